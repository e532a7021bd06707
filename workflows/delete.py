"""The cluster delete saga: stop the other workflows, release what MAAS says the cluster owns.

Idempotent: a second run finds nothing owned and ends Deleted again. It works from any
phase; a create still running is cancelled and its compensation awaited first (a workflow
that cannot close is terminated after a bound, see cp.stop_cluster_workflows).

MAAS keeps a machine owned while it is Releasing or Disk erasing. Delete waits for that in
one heartbeating activity, as long as the erase policy needs (LifecycleTimeouts.release_*),
showing WaitingForRelease or WaitingForDiskErase meanwhile.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        FIND_OWNED,
        RELEASE_MACHINES,
        REVOKE_AGENT_TOKEN,
        STOP_CLUSTER_WORKFLOWS,
        WAIT_RELEASED,
        FindOwnedInput,
        FindOwnedResult,
        ReleaseMachinesInput,
        ReleaseMachinesResult,
        RevokeAgentTokenInput,
        StopClusterWorkflowsInput,
        WaitReleasedInput,
        WaitReleasedResult,
    )
    from domain.cluster import ErasePolicy
    from domain.phases import Phase, Reason
    from workflows.contracts import (
        DELETE_WORKFLOW,
        DeleteClusterInput,
        DeleteClusterResult,
        LifecycleTimeouts,
    )
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


@workflow.defn(name=DELETE_WORKFLOW)
class ClusterDelete:
    @workflow.run
    async def run(self, input: DeleteClusterInput) -> DeleteClusterResult:
        cluster = input.cluster
        status = StatusRecorder(cluster.cluster_id, Phase.DELETING)
        annotate(cluster, Phase.DELETING)
        try:
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
            owned = await calls.run(
                FIND_OWNED,
                FindOwnedInput(account=cluster.account, cluster_id=cluster.cluster_id),
                FindOwnedResult,
            )
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
                result = await calls.run(
                    RELEASE_MACHINES,
                    ReleaseMachinesInput(
                        account=cluster.account,
                        cluster_id=cluster.cluster_id,
                        system_ids=system_ids,
                        erase_policy=policy,
                        comment=f"metalgate: cluster {cluster.cluster_id} deleted",
                    ),
                    ReleaseMachinesResult,
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
