"""An absent gateway shows as a waiting reason, and work resumes when it polls again."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError

from activities.models import CheckAccountResult
from domain.naming import SIGNAL_AGENT_REPORT, VALIDATE_ACCOUNT_WORKFLOW, create_workflow_id
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import BAD_API_KEY, FAST, harness, ready_report
from workflows.contracts import ValidateAccountInput


async def test_create_waits_visibly_for_an_absent_gateway_then_proceeds(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        cluster = h.cluster(workers=2)
        handle = await h.start_create(cluster, FAST.model_copy(update={"gateway_probe": 1.0}))
        await h.wait_reason(cluster.cluster_id, Reason.WAITING_FOR_GATEWAY)
        waiting = h.cp.last(cluster.cluster_id)
        assert waiting is not None and waiting.phase == Phase.ACQUIRING_MACHINES
        assert waiting.message == f"waiting for gateway {h.gateway.name}"
        assert h.maas.acquire_requests == []

        # The Temporal UI answers "which clusters are stuck acquiring on gateway X".
        query = f'ClusterPhase = "AcquiringMachines" AND GatewayId = "{h.gateway.id}"'

        async def listed() -> None:
            ids = [w.id async for w in client.list_workflows(query)]
            assert ids == [create_workflow_id(cluster.cluster_id)]

        await assert_eventually(listed)
        description = await handle.describe()
        memo = await description.memo_value("spec")
        assert memo["pools"] == {"control-plane": 1, "workers": 2}

        async with h.gateway_worker():
            await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
            machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
            await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
            assert (await handle.result()).phase == Phase.RUNNING
            await h.stop_management(cluster.cluster_id)

        events = [r.event or "" for r in h.cp.records[cluster.cluster_id]]
        assert f"gateway {h.gateway.name} is back" in events
        after = h.cp.records[cluster.cluster_id][events.index(f"gateway {h.gateway.name} is back")]
        assert after.phase == Phase.ACQUIRING_MACHINES and after.reason is None


async def test_create_gives_up_on_a_gateway_that_never_comes(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        cluster = h.cluster(workers=1)
        timeouts = FAST.model_copy(update={"gateway_probe": 1.0, "gateway_give_up": 2.0})
        result = await (await h.start_create(cluster, timeouts)).result()

        assert result.phase == Phase.FAILED
        assert result.reason == Reason.GATEWAY_UNAVAILABLE
        assert h.gateway.name in result.message


async def test_account_validation_answers_from_the_gateway(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster()
        result = await client.execute_workflow(
            VALIDATE_ACCOUNT_WORKFLOW,
            ValidateAccountInput(account=cluster.account, gateway=h.gateway),
            id=f"validate-{cluster.cluster_id}",
            task_queue=h.task_queue,
            result_type=CheckAccountResult,
        )
        assert result.machines == 6

        bad = cluster.account.model_copy(update={"api_key": BAD_API_KEY})
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                VALIDATE_ACCOUNT_WORKFLOW,
                ValidateAccountInput(account=bad, gateway=h.gateway),
                id=f"validate-bad-{cluster.cluster_id}",
                task_queue=h.task_queue,
            )
        assert "refused the API key" in str(failure.value.cause)


async def test_account_validation_says_the_gateway_is_offline(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        cluster = h.cluster()
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                VALIDATE_ACCOUNT_WORKFLOW,
                ValidateAccountInput(account=cluster.account, gateway=h.gateway, wait_seconds=1),
                id=f"validate-{cluster.cluster_id}",
                task_queue=h.task_queue,
            )
        assert f"gateway {h.gateway.name} is offline" in str(failure.value.cause)
