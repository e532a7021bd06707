"""The cluster delete saga: stop the other workflows, release what MAAS says the cluster owns.

Idempotent: a second run finds nothing owned and ends Deleted again. It works from any
phase; a create still running is cancelled and its compensation awaited first.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        FIND_OWNED,
        RELEASE_MACHINES,
        REVOKE_AGENT_TOKEN,
        STOP_CLUSTER_WORKFLOWS,
        FindOwnedInput,
        FindOwnedResult,
        ReleaseMachinesInput,
        ReleaseMachinesResult,
        RevokeAgentTokenInput,
        StopClusterWorkflowsInput,
    )
    from domain.phases import Phase
    from workflows.contracts import DELETE_WORKFLOW, DeleteClusterInput, DeleteClusterResult
    from workflows.endpoint import ENDPOINT_PATCH, Endpoint
    from workflows.gateway_calls import GatewayCalls, failure_reason
    from workflows.status import StatusRecorder, annotate, control_plane_call

# How long the create and management workflows get to close (create compensates first).
STOP_WAIT_SECONDS = 600.0
# Release rounds before giving up: MAAS may still list a machine that is mid-release.
MAX_RELEASE_ROUNDS = 6


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
        await control_plane_call(
            STOP_CLUSTER_WORKFLOWS,
            StopClusterWorkflowsInput(
                cluster_id=cluster.cluster_id, wait_seconds=STOP_WAIT_SECONDS
            ),
            start_to_close=STOP_WAIT_SECONDS + 60,
            heartbeat=30.0,
        )
        calls = GatewayCalls(cluster.gateway, input.timeouts, status)
        released: list[str] = []
        rounds = 0
        while True:
            owned = await calls.run(
                FIND_OWNED,
                FindOwnedInput(account=cluster.account, cluster_id=cluster.cluster_id),
                FindOwnedResult,
            )
            system_ids = sorted(m.system_id for m in owned.machines)
            if not system_ids:
                break
            if rounds >= MAX_RELEASE_ROUNDS:
                raise ApplicationError(
                    f"MAAS still lists {', '.join(system_ids)} as owned by the cluster after "
                    f"{rounds} release rounds",
                    type="MachinesStillOwned",
                    non_retryable=True,
                )
            if rounds:
                await workflow.sleep(min(2.0**rounds, 30.0))
            result = await calls.run(
                RELEASE_MACHINES,
                ReleaseMachinesInput(
                    account=cluster.account,
                    cluster_id=cluster.cluster_id,
                    system_ids=system_ids,
                    erase_policy=cluster.spec.erase_policy,
                    comment=f"metalgate: cluster {cluster.cluster_id} deleted",
                ),
                ReleaseMachinesResult,
            )
            released.extend(s for s in result.released if s not in released)
            rounds += 1
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
