"""The reconciler: a schedule that keeps the store and the workflows consistent.

Thin on purpose (its schedule: runtime.schedules): one control-plane activity compares the store's clusters with Temporal
and (re)starts the sagas that are missing or ended against the cluster's phase.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        RECONCILE_CLUSTERS,
        ReconcileClustersInput,
        ReconcileClustersResult,
    )
    from domain.naming import RECONCILE_WORKFLOW
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
