"""Plan before acting: one PLAN_MACHINES on the cluster's gateway, with a bounded wait.

Shaped like the account check (workflows.validate): a person waits on the answer, so a
gateway that does not pick the task up within `wait_seconds` is reported as offline instead
of waiting for it the way a saga does.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import PLAN_MACHINES, PlanMachinesInput
    from domain.capacity_plan import CapacityPlan
    from domain.naming import PLAN_WORKFLOW, gateway_queue
    from domain.phases import Reason
    from workflows.contracts import PlanClusterInput
    from workflows.gateway_calls import error_type, is_schedule_to_start_timeout
    from workflows.validate import CHECK_RETRY, RETRY_MARGIN_SECONDS, last_failure


@workflow.defn(name=PLAN_WORKFLOW)
class ClusterPlan:
    @workflow.run
    async def run(self, input: PlanClusterInput) -> CapacityPlan:
        gateway = input.gateway
        try:
            return await workflow.execute_activity(
                PLAN_MACHINES,
                PlanMachinesInput(
                    account=input.account, pools=input.pools, cluster_id=input.cluster_id
                ),
                result_type=CapacityPlan,
                task_queue=gateway_queue(gateway.id),
                schedule_to_start_timeout=timedelta(seconds=input.wait_seconds),
                schedule_to_close_timeout=timedelta(
                    seconds=input.wait_seconds + RETRY_MARGIN_SECONDS
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CHECK_RETRY,
            )
        except ActivityError as err:
            if is_schedule_to_start_timeout(err):
                raise ApplicationError(
                    f"gateway {gateway.name} is offline: it did not pick up the plan within "
                    f"{input.wait_seconds:.0f}s; start it (metalgate gateway run) and retry",
                    type=Reason.GATEWAY_UNAVAILABLE.value,
                    non_retryable=True,
                ) from err
            failure = last_failure(err)
            kind = failure.type if isinstance(failure, ApplicationError) else error_type(err)
            raise ApplicationError(
                f"planning through gateway {gateway.name} failed: {failure}",
                type=kind or Reason.INTERNAL_ERROR.value,
                non_retryable=True,
            ) from err
