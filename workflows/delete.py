"""The cluster delete saga: stop the other workflows, release what MAAS says the cluster owns.

Idempotent: a second run finds nothing owned and ends Deleted again. It works from any
phase; a create still running is cancelled and its compensation awaited first (a workflow
that cannot close is terminated after a bound, see cp.stop_cluster_workflows).

MAAS keeps a machine owned while it is Releasing or Disk erasing. Delete waits for that in
one heartbeating activity, as long as the erase policy needs (LifecycleTimeouts.release_*),
showing WaitingForRelease or WaitingForDiskErase meanwhile.

Force (SIGNAL_FORCE_DELETE, sent by `DELETE ?force=true` once a delete is stuck): the MAAS
work in flight is cancelled and the saga finishes on the control plane alone. What the store
says MAAS may still hold is named in the final status and events (ForceDeleted); the
cluster is then Deleted, so the orphan sweeper releases those things by their ownership
marks once the gateway is back.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        CLUSTER_LEFTOVERS,
        REVOKE_AGENT_TOKEN,
        STOP_CLUSTER_WORKFLOWS,
        WAIT_RELEASED,
        ClusterLeftoversInput,
        RevokeAgentTokenInput,
        StopClusterWorkflowsInput,
        WaitReleasedInput,
        WaitReleasedResult,
    )
    from domain.cluster import ErasePolicy
    from domain.leftovers import LeftBehind
    from domain.lifecycle import DeleteClusterInput, DeleteClusterResult, LifecycleTimeouts
    from domain.naming import DELETE_WORKFLOW, SIGNAL_FORCE_DELETE
    from domain.phases import Phase, Reason
    from workflows.endpoint import ENDPOINT_PATCH, Endpoint
    from workflows.gateway_calls import MAAS_RETRY, GatewayCalls, failure_reason
    from workflows.status import StatusRecorder, annotate, control_plane_call
    from workflows.surplus import RELEASING_STATUSES

# Release calls before giving up on machines that stay owned without releasing (MAAS's
# Failed releasing, say); machines that are releasing are waited for instead.
MAX_RELEASE_ROUNDS = 6
# A retry of the wait resumes it after a lost gateway replica; the deadline bounds them all.
WAIT_RELEASED_RETRY = RetryPolicy(
    initial_interval=MAAS_RETRY.initial_interval,
    maximum_interval=MAAS_RETRY.maximum_interval,
    non_retryable_error_types=MAAS_RETRY.non_retryable_error_types,
)


def release_timeout(timeouts: LifecycleTimeouts, policy: ErasePolicy) -> float:
    """How long MAAS may take to release a machine under this erase policy."""
    return {
        ErasePolicy.NONE: timeouts.release_none,
        ErasePolicy.QUICK: timeouts.release_quick,
        ErasePolicy.SECURE: timeouts.release_secure,
    }[policy]


# Histories recorded before force delete existed run the saga without racing the signal.
FORCE_DELETE_PATCH = "force-delete"
# A forced delete gives the other workflows this long to close before terminating them: a
# create compensating through the absent gateway would never close by itself.
FORCE_STOP_WAIT_SECONDS = 10.0


@workflow.defn(name=DELETE_WORKFLOW)
class ClusterDelete:
    def __init__(self) -> None:
        self._force = False

    @workflow.signal(name=SIGNAL_FORCE_DELETE)
    def force(self) -> None:
        self._force = True

    @workflow.run
    async def run(self, input: DeleteClusterInput) -> DeleteClusterResult:
        cluster = input.cluster
        status = StatusRecorder(cluster.cluster_id, Phase.DELETING)
        annotate(cluster, Phase.DELETING)
        try:
            if workflow.patched(FORCE_DELETE_PATCH):
                return await self._delete_unless_forced(input, status)
            return await self._delete(input, status)
        except FailureError as err:
            reason, message = failure_reason(err)
            # Still Deleting: nothing is known to be gone; running the delete again resumes.
            await status.set(
                Phase.DELETING,
                reason=reason,
                message=message,
                event=f"delete stopped ({reason}): {message}; run the delete again",
            )
            raise

    async def _delete_unless_forced(
        self, input: DeleteClusterInput, status: StatusRecorder
    ) -> DeleteClusterResult:
        """The normal delete, until a force signal cancels it and finishes without MAAS."""
        normal = asyncio.ensure_future(self._delete(input, status))
        await workflow.wait_condition(lambda: self._force or normal.done())
        if normal.done():
            return normal.result()
        normal.cancel()
        try:
            await normal
        except (asyncio.CancelledError, FailureError):
            workflow.logger.info(
                "cluster %s: normal delete cancelled by force", input.cluster.cluster_id
            )
        return await self._finish_forced(input, status)

    async def _finish_forced(
        self, input: DeleteClusterInput, status: StatusRecorder
    ) -> DeleteClusterResult:
        cluster = input.cluster
        await status.event("force delete: finishing without the gateway")
        await control_plane_call(
            STOP_CLUSTER_WORKFLOWS,
            StopClusterWorkflowsInput(
                cluster_id=cluster.cluster_id, wait_seconds=FORCE_STOP_WAIT_SECONDS
            ),
            start_to_close=FORCE_STOP_WAIT_SECONDS + 60,
            heartbeat=30.0,
        )
        left: LeftBehind = await control_plane_call(
            CLUSTER_LEFTOVERS, ClusterLeftoversInput(cluster_id=cluster.cluster_id), LeftBehind
        )
        await control_plane_call(
            REVOKE_AGENT_TOKEN, RevokeAgentTokenInput(cluster_id=cluster.cluster_id)
        )
        lines = left.lines()
        for line in lines:
            await status.event(f"left in MAAS by force delete: {line}")
        sweeper = f"the orphan sweeper releases them once gateway {cluster.gateway.name} is back"
        message = (
            f"force-deleted without the gateway; MAAS may still hold: {'; '.join(lines)}; {sweeper}"
            if lines
            else "force-deleted without the gateway; the store knew of nothing held in MAAS"
        )
        await status.set(
            Phase.DELETED,
            reason=Reason.FORCE_DELETED,
            message=message,
            machines=left.machines,
            event=message,
        )
        return DeleteClusterResult(released=[], left_behind=left)

    async def _delete(
        self, input: DeleteClusterInput, status: StatusRecorder
    ) -> DeleteClusterResult:
        cluster = input.cluster
        await status.set(Phase.DELETING, event="delete started")
        stop_wait = input.timeouts.stop_workflows
        await control_plane_call(
            STOP_CLUSTER_WORKFLOWS,
            StopClusterWorkflowsInput(cluster_id=cluster.cluster_id, wait_seconds=stop_wait),
            start_to_close=stop_wait + 60,
            heartbeat=30.0,
        )
        calls = GatewayCalls(cluster.gateway, input.timeouts, status)
        policy = cluster.spec.erase_policy
        deadline = workflow.time() + release_timeout(input.timeouts, policy)
        released: list[str] = []
        rounds = 0
        while True:
            owned = await calls.find_owned(cluster)
            releasing = sorted(
                m.system_id for m in owned.machines if m.status in RELEASING_STATUSES
            )
            system_ids = sorted(m.system_id for m in owned.machines if m.system_id not in releasing)
            if not owned.machines:
                break
            if rounds >= MAX_RELEASE_ROUNDS or workflow.time() > deadline:
                raise ApplicationError(
                    f"MAAS still lists {', '.join(system_ids + releasing)} as owned by the "
                    f"cluster after {rounds} release rounds",
                    type=Reason.MACHINES_STILL_OWNED.value,
                    non_retryable=True,
                )
            if system_ids:
                if rounds:
                    await workflow.sleep(min(2.0**rounds, 30.0))
                result = await calls.release(
                    cluster, system_ids, f"metalgate: cluster {cluster.cluster_id} deleted"
                )
                released.extend(s for s in result.released if s not in released)
                releasing = sorted({*releasing, *result.in_progress})
                rounds += 1
            if releasing:
                await self._wait_released(input, status, calls, releasing, deadline)
        if workflow.patched(ENDPOINT_PATCH):
            # After the machines: none of them announces the VIP any more.
            removed = await Endpoint(cluster, calls).remove()
            endpoint_gone = ", ".join([*removed.released_ips, *removed.deleted_records])
            if endpoint_gone:
                await status.event(f"removed the control-plane endpoint: {endpoint_gone}")
        await control_plane_call(
            REVOKE_AGENT_TOKEN, RevokeAgentTokenInput(cluster_id=cluster.cluster_id)
        )
        await status.set(
            Phase.DELETED,
            machines=[],
            event=f"cluster deleted; released {len(released)} machines",
        )
        return DeleteClusterResult(released=released)

    async def _wait_released(
        self,
        input: DeleteClusterInput,
        status: StatusRecorder,
        calls: GatewayCalls,
        releasing: list[str],
        deadline: float,
    ) -> None:
        cluster = input.cluster
        erasing = cluster.spec.erase_policy != ErasePolicy.NONE
        what = "erasing the disks of" if erasing else "releasing"
        await status.set(
            Phase.DELETING,
            reason=Reason.WAITING_FOR_DISK_ERASE if erasing else Reason.WAITING_FOR_RELEASE,
            message=f"MAAS is {what} {len(releasing)} machine(s)",
            event=f"waiting for MAAS: {what} {', '.join(releasing)} "
            f"(up to {release_timeout(input.timeouts, cluster.spec.erase_policy):.0f}s)",
        )
        poll = input.timeouts.release_poll_interval
        await calls.run(
            WAIT_RELEASED,
            WaitReleasedInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                poll_interval_seconds=poll,
            ),
            WaitReleasedResult,
            start_to_close=max(1.0, deadline - workflow.time()),
            schedule_to_close=max(1.0, deadline - workflow.time()),
            heartbeat=max(30.0, poll * 5),
            retry=WAIT_RELEASED_RETRY,
        )
