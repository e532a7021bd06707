"""The delete saga: from any phase, by ownership in MAAS, repeatable."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from domain.leftovers import LeftBehind
from domain.lifecycle import ClusterRef, DeleteClusterInput, DeleteClusterResult
from domain.naming import (
    DELETE_WORKFLOW,
    SIGNAL_AGENT_REPORT,
    SIGNAL_FORCE_DELETE,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.workflows.fakes import FAST, Harness, harness, is_running, ready_report


async def delete(h: Harness, cluster: ClusterRef, run: int = 0) -> DeleteClusterResult:
    return await h.client.execute_workflow(
        DELETE_WORKFLOW,
        DeleteClusterInput(cluster=cluster, timeouts=FAST),
        id=f"{delete_workflow_id(cluster.cluster_id)}/{run}",
        task_queue=h.task_queue,
        result_type=DeleteClusterResult,
    )


async def test_delete_during_create_leaves_nothing_allocated(client: Client) -> None:
    async with harness(client) as h:
        h.maas.deploy_gate.clear()
        cluster = h.cluster(workers=2)
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.DEPLOYING_OS)
        assert len(h.maas.owned(cluster.cluster_id)) == 3

        result = await delete(h, cluster)

        assert h.maas.owned(cluster.cluster_id) == []
        assert not await is_running(create)
        with pytest.raises(WorkflowFailureError) as failure:
            await create.result()
        assert isinstance(failure.value.cause, CancelledError)
        # Create's compensation released them; delete found nothing left to release.
        assert result.released == []
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.DELETED
        assert h.cp.revoked == [cluster.cluster_id]
        h.maas.deploy_gate.set()


async def test_delete_of_a_running_cluster_is_idempotent(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        # A machine the store never heard of, e.g. an allocation whose result was lost.
        lost = h.maas.machines["m5"]
        lost.owner, lost.request, lost.status = cluster.cluster_id, "create", "Allocated"

        first = await delete(h, cluster, 0)
        second = await delete(h, cluster, 1)

        assert sorted(first.released) == ["m0", "m1", "m2", "m5"]
        assert second.released == []
        assert h.maas.owned(cluster.cluster_id) == []
        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        assert not await is_running(manage)
        records = h.cp.records[cluster.cluster_id]
        assert [r.phase for r in records[-2:]] == [Phase.DELETING, Phase.DELETED]
        assert h.cp.phases(cluster.cluster_id).count(Phase.DELETED) == 2


async def running_cluster_without_gateway(h: Harness, workers: int = 1) -> ClusterRef:
    """A Running cluster whose management has stopped; the caller then stops the gateway."""
    cluster = h.cluster(workers=workers)
    create = await h.start_create(cluster)
    await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
    machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
    await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
    assert (await create.result()).phase == Phase.RUNNING
    await h.stop_management(cluster.cluster_id)
    h.cp.left[cluster.cluster_id] = LeftBehind(machines=machines, dns_record="metalgate-x")
    return cluster


async def test_force_finishes_a_delete_waiting_for_the_gateway(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        async with h.gateway_worker():
            cluster = await running_cluster_without_gateway(h)
        handle = await client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=cluster, timeouts=FAST),
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
            result_type=DeleteClusterResult,
        )
        await h.wait_reason(cluster.cluster_id, Reason.WAITING_FOR_GATEWAY)
        await handle.signal(SIGNAL_FORCE_DELETE)
        result = await handle.result()

        assert result.left_behind == h.cp.left[cluster.cluster_id]
        last = h.cp.last(cluster.cluster_id)
        assert last is not None
        assert (last.phase, last.reason) == (Phase.DELETED, Reason.FORCE_DELETED)
        assert last.machines == result.left_behind.machines
        assert "DNS record metalgate-x" in last.message
        assert h.cp.revoked == [cluster.cluster_id]
        # Nothing was released: MAAS still lists them as the cluster's, for the sweeper.
        assert len(h.maas.owned(cluster.cluster_id)) == 2


async def test_force_restarts_a_delete_that_gave_up(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        async with h.gateway_worker():
            cluster = await running_cluster_without_gateway(h)
        gives_up = FAST.model_copy(update={"gateway_probe": 0.5, "gateway_give_up": 1.0})
        first = DeleteClusterInput(cluster=cluster, timeouts=gives_up)
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                DELETE_WORKFLOW,
                first,
                id=delete_workflow_id(cluster.cluster_id),
                task_queue=h.task_queue,
            )
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.reason == Reason.GATEWAY_UNAVAILABLE
        # What the API does for ?force=true: signal-with-start, here on a closed workflow.
        again = await client.start_workflow(
            DELETE_WORKFLOW,
            first,
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
            result_type=DeleteClusterResult,
            start_signal=SIGNAL_FORCE_DELETE,
        )
        result = await again.result()
        assert result.left_behind is not None and len(result.left_behind.machines) == 2
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.reason == Reason.FORCE_DELETED


async def test_a_delete_that_gives_up_names_the_machines_still_owned(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=1)
        stuck = h.maas.machines["m0"]
        stuck.owner, stuck.request, stuck.status = cluster.cluster_id, "create", "Allocated"
        h.maas._free = lambda machine: None  # type: ignore[method-assign]  # MAAS keeps it
        timeouts = FAST.model_copy(update={"release_quick": 0.5})

        with pytest.raises(WorkflowFailureError) as failure:
            await h.client.execute_workflow(
                DELETE_WORKFLOW,
                DeleteClusterInput(cluster=cluster, timeouts=timeouts),
                id=delete_workflow_id(cluster.cluster_id),
                task_queue=h.task_queue,
                result_type=DeleteClusterResult,
            )

        cause = failure.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == Reason.MACHINES_STILL_OWNED
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.DELETING
        assert last.reason == Reason.MACHINES_STILL_OWNED and "m0" in last.message
