"""The Temporal UI's cluster queries tell the truth about closed workflows too.

A closed run's search attributes never change again, so each run leaves what the cluster
became: a deleted cluster's workflows say Deleted, a failed create says Failed with its
reason, and a run that handed its cluster on (create to management, continue-as-new) claims
no phase at all.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowExecutionStatus

from domain.naming import (
    SA_CLUSTER_PHASE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_STOP,
    create_workflow_id,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import harness, ready_report
from tests.workflows.test_delete import delete
from tests.workflows.test_manage import start_manage, state_of


async def listed(client: Client, query: str) -> list[str]:
    return sorted([w.id async for w in client.list_workflows(query)])


async def test_a_deleted_cluster_is_running_nowhere(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=1)
        cluster_id = cluster.cluster_id
        create = await h.start_create(cluster)
        await h.wait_phase(cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        running = f'ClusterId = "{cluster_id}" AND ClusterPhase = "Running"'

        async def managed() -> None:
            assert await listed(client, running) == [manage_workflow_id(cluster_id)]

        await assert_eventually(managed)

        await delete(h, cluster)

        deleted = f'ClusterId = "{cluster_id}" AND ClusterPhase = "Deleted"'

        async def closed_as_deleted() -> None:
            assert await listed(client, deleted) == sorted(
                [f"{delete_workflow_id(cluster_id)}/0", manage_workflow_id(cluster_id)]
            )

        await assert_eventually(closed_as_deleted)
        # Every run of the cluster is closed and indexed by now; none still claims Running.
        assert (
            await listed(client, f'ClusterId = "{cluster_id}" AND ExecutionStatus = "Running"')
            == []
        )
        assert await listed(client, running) == []
        assert await listed(client, f'ClusterId = "{cluster_id}"') == sorted(
            [
                create_workflow_id(cluster_id),
                f"{delete_workflow_id(cluster_id)}/0",
                manage_workflow_id(cluster_id),
            ]
        )


async def test_a_failed_create_says_failed_and_why(client: Client) -> None:
    async with harness(client, machines=2) as h:
        cluster = h.cluster(workers=2)
        result = await (await h.start_create(cluster)).result()
        assert result.reason == Reason.INSUFFICIENT_CAPACITY
        query = (
            f'ClusterId = "{cluster.cluster_id}" AND ClusterPhase = "Failed" '
            f'AND ClusterReason = "{Reason.INSUFFICIENT_CAPACITY.value}"'
        )

        async def failed() -> None:
            assert await listed(client, query) == [create_workflow_id(cluster.cluster_id)]

        await assert_eventually(failed)


async def test_runs_continued_as_new_leave_the_phase_to_the_live_run(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h, history_limit=50)
        machines = (await state_of(handle)).machines
        for n in range(120):
            await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
            if n % 10 == 9:
                await asyncio.sleep(0.2)

        async def phases() -> list[tuple[WorkflowExecutionStatus | None, str | None]]:
            runs = client.list_workflows(f'WorkflowId = "{handle.id}"')
            return sorted(
                [(w.status, w.typed_search_attributes.get(SA_CLUSTER_PHASE)) async for w in runs],
                key=str,
            )

        async def continued() -> None:
            runs = await phases()
            assert (WorkflowExecutionStatus.CONTINUED_AS_NEW, None) in runs, runs
            assert set(runs) == {
                (WorkflowExecutionStatus.CONTINUED_AS_NEW, None),
                (WorkflowExecutionStatus.RUNNING, Phase.RUNNING.value),
            }, runs

        await assert_eventually(continued, within=60.0)
        await handle.signal(SIGNAL_STOP)
        await handle.result()

        async def stopped() -> None:
            runs = await phases()
            assert (WorkflowExecutionStatus.COMPLETED, Phase.DELETED.value) in runs, runs

        await assert_eventually(stopped)
