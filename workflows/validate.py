"""Cloud-account validation: one CHECK_ACCOUNT on the account's gateway, with a bounded wait."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        CHECK_ACCOUNT,
        ERR_MAAS_AUTH_FAILED,
        ERR_MAAS_UNREACHABLE,
        MAAS_NON_RETRYABLE,
        CheckAccountInput,
        CheckAccountResult,
    )
    from domain.naming import gateway_queue
    from domain.phases import Reason
    from workflows.contracts import VALIDATE_ACCOUNT_WORKFLOW, ValidateAccountInput
    from workflows.gateway_calls import error_type, is_schedule_to_start_timeout, root_cause

# A user waits on this answer: one quick retry for a transient MAAS hiccup, no more.
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=2,
    non_retryable_error_types=MAAS_NON_RETRYABLE,
)


@workflow.defn(name=VALIDATE_ACCOUNT_WORKFLOW)
class CloudAccountValidate:
    @workflow.run
    async def run(self, input: ValidateAccountInput) -> CheckAccountResult:
        gateway = input.gateway
        try:
            return await workflow.execute_activity(
                CHECK_ACCOUNT,
                CheckAccountInput(account=input.account),
                result_type=CheckAccountResult,
                task_queue=gateway_queue(gateway.id),
                schedule_to_start_timeout=timedelta(seconds=input.wait_seconds),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CHECK_RETRY,
            )
        except ActivityError as err:
            if is_schedule_to_start_timeout(err):
                raise ApplicationError(
                    f"gateway {gateway.name} is offline: it did not pick up the check within "
                    f"{input.wait_seconds:.0f}s; start it (metalgate gateway run) and retry",
                    type=Reason.GATEWAY_UNAVAILABLE.value,
                    non_retryable=True,
                ) from err
            kind = error_type(err)
            if kind == ERR_MAAS_AUTH_FAILED:
                message = f"MAAS at {input.account.url} refused the API key: {root_cause(err)}"
            elif kind == ERR_MAAS_UNREACHABLE:
                message = (
                    f"gateway {gateway.name} cannot reach MAAS at {input.account.url}: "
                    f"{root_cause(err)}"
                )
            else:
                message = f"checking MAAS at {input.account.url} failed: {root_cause(err)}"
            raise ApplicationError(
                message, type=kind or Reason.INTERNAL_ERROR.value, non_retryable=True
            ) from err
