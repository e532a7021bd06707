"""Failure windows of the sagas: cancels awaited, surplus and partial allocations released,
compensation after a gateway wait, delete through long disk erases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from activities.models import (
    ACQUIRE_MACHINES,
    FIND_OWNED,
    WAIT_DEPLOYED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    WaitDeployedInput,
    WaitDeployedResult,
)
from domain.cluster import ErasePolicy
from domain.lifecycle import (
    ClusterRef,
    CreateClusterResult,
    DeleteClusterInput,
    DeleteClusterResult,
)
from domain.naming import (
    DELETE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    UPDATE_SCALE,
    delete_workflow_id,
    gateway_queue,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually, new_worker
from tests.workflows.fakes import FAST, FakeMaas, Harness, harness, is_running, ready_report
from workflows.contracts import ActionAccepted, ManageState, ScaleRequest


def gateway(h: Harness, maas: FakeMaas) -> Worker:
    """The gateway worker with `maas`; heartbeats go out at once, so cancels land fast."""
    h.maas = maas
    return new_worker(
        h.client,
        activities=maas.activities(),
        task_queue=gateway_queue(h.gateway.id),
        max_heartbeat_throttle_interval=timedelta(seconds=0.5),
        default_heartbeat_throttle_interval=timedelta(seconds=0.5),
    )


def events(h: Harness, cluster_id: str) -> list[str]:
    return [r.event or "" for r in h.cp.records.get(cluster_id, [])]


async def pending_activities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    described = await handle.describe()
    return [a.activity_type.name for a in described.raw_description.pending_activities]


class SlowToStopMaas(FakeMaas):
    """An acquire that, once cancelled, still allocates for a while before it stops."""

    def __init__(self) -> None:
        super().__init__(6)
        self.acquiring = asyncio.Event()

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, inp: AcquireMachinesInput) -> AcquireMachinesResult:
        self.calls.append(ACQUIRE_MACHINES)
        self.acquiring.set()
        try:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # the MAAS call in flight when the cancel came
            await super().acquire_machines(inp)
            self.calls.append("acquire stopped")
            raise


async def test_a_cancelled_acquire_is_awaited_before_compensation(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        maas = SlowToStopMaas()
        async with gateway(h, maas):
            cluster = h.cluster(workers=2)
            create = await h.start_create(cluster)
            await asyncio.wait_for(maas.acquiring.wait(), timeout=20)
            await create.cancel()
            await assert_eventually(lambda: closed(create), within=30)
            # Before: compensation looked in MAAS while the acquire still allocated.
            stopped = maas.calls.index("acquire stopped")
            assert FIND_OWNED in maas.calls[stopped:], maas.calls
            assert maas.owned(cluster.cluster_id) == []


async def closed(handle: WorkflowHandle[Any, Any]) -> None:
    assert not await is_running(handle)


class SurplusMaas(FakeMaas):
    """The answer of attempt 2 reached the workflow; attempt 1 had taken one more."""

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, inp: AcquireMachinesInput) -> AcquireMachinesResult:
        result = await super().acquire_machines(inp)
        if inp.request_id == "create":
            spare = next(m for m in self.machines.values() if m.owner is None)
            spare.owner, spare.request, spare.pool, spare.status = (
                inp.cluster_id,
                inp.request_id,
                "workers",
                "Allocated",
            )
        return result


async def test_surplus_marked_machines_after_acquire_are_released(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        maas = SurplusMaas(6)
        maas.deploy_gate.clear()
        async with gateway(h, maas):
            cluster = h.cluster(workers=2).model_copy(update={"installation_id": "mg-test"})
            create = await h.start_create(cluster)
            await h.wait_phase(cluster.cluster_id, Phase.DEPLOYING_OS)

            async def three_held() -> None:
                assert len(maas.owned(cluster.cluster_id)) == 3

            await assert_eventually(three_held)
            assert any("surplus" in e for e in events(h, cluster.cluster_id))
            # The marks name the installation the cluster belongs to.
            assert {m.installation for m in maas.owned(cluster.cluster_id)} == {"mg-test"}
            await create.cancel()
            maas.deploy_gate.set()


class AbsentAfterAcquireMaas(FakeMaas):
    """An acquire that allocates, then loses its gateway before it can answer."""

    def __init__(self) -> None:
        super().__init__(6)
        self.gone = asyncio.Event()

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, inp: AcquireMachinesInput) -> AcquireMachinesResult:
        await super().acquire_machines(inp)
        self.gone.set()
        raise ApplicationError("connection reset while answering")


async def test_create_failing_after_a_gateway_wait_releases_an_earlier_attempts_machines(
    client: Client,
) -> None:
    timeouts = FAST.model_copy(update={"gateway_probe": 1.0, "gateway_give_up": 4.0})
    async with harness(client, gateway_up=False) as h:
        maas = AbsentAfterAcquireMaas()
        cluster = h.cluster(workers=2)
        async with gateway(h, maas):
            create = await h.start_create(cluster, timeouts)
            await asyncio.wait_for(maas.gone.wait(), timeout=20)
        assert len(maas.owned(cluster.cluster_id)) == 3

        async def compensating() -> None:
            assert FIND_OWNED in await pending_activities(create)

        # Before: with nothing in hand, compensation was skipped and the machines stayed.
        await assert_eventually(compensating, within=30, interval=0.5)
        async with gateway(h, maas):
            result = CreateClusterResult.model_validate(await create.result())
        assert result.phase == Phase.FAILED
        assert result.reason == Reason.GATEWAY_UNAVAILABLE
        assert maas.owned(cluster.cluster_id) == []


async def test_a_create_fenced_by_a_delete_ends_without_waiting_for_the_gateway(
    client: Client,
) -> None:
    # A create that starts after its cluster's DELETE fails at its first step; the delete
    # releases by ownership, so with the gateway away it must end at once, not wait for it.
    timeouts = FAST.model_copy(update={"gateway_probe": 1.0, "gateway_give_up": 120.0})
    async with harness(client, gateway_up=False) as h:
        cluster = h.cluster(workers=2)
        h.cp.delete_requested.add(cluster.cluster_id)
        create = await h.start_create(cluster, timeouts)
        # Before: compensation asked the absent gateway what the cluster owns and waited.
        result = CreateClusterResult.model_validate(
            await asyncio.wait_for(create.result(), timeout=20)
        )
        assert (result.phase, result.reason) == (Phase.FAILED, Reason.CANCELLED)
        assert h.maas.calls == []
        reasons = [r.reason for r in h.cp.records[cluster.cluster_id]]
        assert Reason.WAITING_FOR_GATEWAY not in reasons


class FailsWhenCancelledMaas(FakeMaas):
    """A deploy wait that ends in an error of its own when cancelled, as a MAAS call that
    fails in the same moment does (or an attempt whose heartbeat timed out under load)."""

    def __init__(self) -> None:
        super().__init__(6)
        self.waiting = asyncio.Event()

    @activity.defn(name=WAIT_DEPLOYED)
    async def wait_deployed(self, inp: WaitDeployedInput) -> WaitDeployedResult:
        self.waiting.set()
        try:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            raise ApplicationError(
                "MAAS answered 503", type=Reason.MAAS_UNREACHABLE.value, non_retryable=True
            ) from None


async def test_a_cancel_is_not_lost_when_an_activity_fails_as_it_lands(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        maas = FailsWhenCancelledMaas()
        cluster = h.cluster(workers=2)
        async with gateway(h, maas):
            create = await h.start_create(cluster)
            await asyncio.wait_for(maas.waiting.wait(), timeout=20)
            await create.cancel()
            # Before: the first error out of the parallel deploys was the 503, so the create
            # took the cancel for a MAAS failure, compensated and completed as Failed.
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(create.result(), timeout=30)
        assert isinstance(failure.value.cause, CancelledError)
        assert maas.owned(cluster.cluster_id) == []
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and (last.phase, last.reason) == (Phase.FAILED, Reason.CANCELLED)


class PartialScaleMaas(FakeMaas):
    """A scale-up acquire that takes one machine, then fails (lost the rest to a race)."""

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, inp: AcquireMachinesInput) -> AcquireMachinesResult:
        if inp.request_id == "create":
            return await super().acquire_machines(inp)
        spare = next(m for m in self.machines.values() if m.owner is None)
        spare.owner, spare.request, spare.pool, spare.status = (
            inp.cluster_id,
            inp.request_id,
            "workers",
            "Allocated",
        )
        raise ApplicationError(
            "lost candidates to concurrent allocations",
            type=Reason.INSUFFICIENT_CAPACITY.value,
            non_retryable=True,
        )


async def running(h: Harness, cluster: ClusterRef) -> WorkflowHandle[Any, Any]:
    create = await h.start_create(cluster)
    await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
    machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
    await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
    assert (await create.result()).phase == Phase.RUNNING
    return h.client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))


async def test_a_failed_scale_up_releases_what_it_allocated(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        maas = PartialScaleMaas(6)
        async with gateway(h, maas):
            cluster = h.cluster(workers=1)
            manage = await running(h, cluster)
            before = {m.system_id for m in maas.owned(cluster.cluster_id)}
            await manage.execute_update(
                UPDATE_SCALE, ScaleRequest(pool="workers", count=3), result_type=ActionAccepted
            )

            async def settled() -> None:
                state = await manage.query(QUERY_STATE, result_type=ManageState)
                assert not state.pending
                assert any("scale" in e and "failed" in e for e in events(h, cluster.cluster_id))

            await assert_eventually(settled, within=30)
            # Before: the machine the failed acquire took stayed allocated to the cluster.
            assert {m.system_id for m in maas.owned(cluster.cluster_id)} == before
            await h.stop_management(cluster.cluster_id)


async def test_delete_waits_through_a_long_disk_erase_and_says_so(client: Client) -> None:
    async with harness(client, gateway_up=False) as h:
        maas = FakeMaas(6, release_seconds=4.0)
        async with gateway(h, maas):
            cluster = h.cluster(workers=1)
            cluster.spec.erase_policy = ErasePolicy.QUICK
            manage = await running(h, cluster)
            await h.stop_management(cluster.cluster_id)
            assert manage is not None
            result = await client.execute_workflow(
                DELETE_WORKFLOW,
                DeleteClusterInput(cluster=cluster, timeouts=FAST),
                id=delete_workflow_id(cluster.cluster_id),
                task_queue=h.task_queue,
                result_type=DeleteClusterResult,
            )
        assert len(result.released) == 2
        assert maas.owned(cluster.cluster_id) == []
        reasons = [r.reason for r in h.cp.records[cluster.cluster_id]]
        assert Reason.WAITING_FOR_DISK_ERASE in reasons
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.DELETED
        # One heartbeating wait, not a release call per poll.
        assert maas.calls.count("maas.release_machines") == 1
