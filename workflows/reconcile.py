"""The reconciler: a schedule that keeps the store and the workflows consistent.

Thin on purpose: one control-plane activity compares the store's clusters with Temporal
and (re)starts the sagas that are missing or ended against the cluster's phase.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        RECONCILE_CLUSTERS,
        ReconcileClustersInput,
        ReconcileClustersResult,
    )
    from domain.naming import CONTROL_PLANE_QUEUE, RECONCILE_SCHEDULE_ID
    from workflows.contracts import RECONCILE_WORKFLOW
    from workflows.status import control_plane_call

# The next scheduled run comes soon anyway; retrying one for long only piles them up.
RECONCILE_RETRY = RetryPolicy(maximum_attempts=3)


@workflow.defn(name=RECONCILE_WORKFLOW)
class Reconcile:
    @workflow.run
    async def run(self, input: ReconcileClustersInput) -> ReconcileClustersResult:
        result = await control_plane_call(
            RECONCILE_CLUSTERS,
            input,
            ReconcileClustersResult,
            start_to_close=300.0,
            heartbeat=60.0,
            retry=RECONCILE_RETRY,
        )
        for line in result.actions:
            workflow.logger.warning("reconciled %s", line)
        return result


async def ensure_reconcile_schedule(client: Client, *, every: timedelta) -> None:
    """Create the fleet-wide reconcile schedule unless it exists (every worker tries)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            ReconcileClustersInput(),
            id=f"{RECONCILE_SCHEDULE_ID}/run",
            task_queue=CONTROL_PLANE_QUEUE,
            execution_timeout=max(every * 4, timedelta(minutes=10)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        pass
