"""Cloud-account validation: one CHECK_ACCOUNT on the account's gateway, with a bounded wait."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        CHECK_ACCOUNT,
        MAAS_NON_RETRYABLE,
        CheckAccountInput,
        CheckAccountResult,
    )
    from domain.naming import VALIDATE_ACCOUNT_WORKFLOW, gateway_queue
    from domain.phases import Reason
    from workflows.contracts import ValidateAccountInput
    from workflows.gateway_calls import error_type, is_schedule_to_start_timeout, root_cause


# A user waits on this answer: transient MAAS errors (5xx, resets, timeouts) are retried
# quickly, for as long as the caller's wait allows (schedule-to-close), then reported.
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=0.5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    # Something that is not MAAS at the URL is answered at once: the user fixes the URL.
    non_retryable_error_types=[*MAAS_NON_RETRYABLE, Reason.MAAS_PROTOCOL_ERROR],
)
# The API waits wait_seconds + 5 for the answer: the retries end before that.
RETRY_MARGIN_SECONDS = 3.0


def last_failure(err: ActivityError) -> BaseException:
    """What ended the check; when retrying ran out of time, the last attempt's failure."""
    cause = root_cause(err)
    if (
        isinstance(cause, TimeoutError)
        and cause.type == TimeoutType.SCHEDULE_TO_CLOSE
        and isinstance(cause.cause, ApplicationError)
    ):
        return cause.cause
    return cause


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
                schedule_to_close_timeout=timedelta(
                    seconds=input.wait_seconds + RETRY_MARGIN_SECONDS
                ),
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
            failure = last_failure(err)
            kind = failure.type if isinstance(failure, ApplicationError) else error_type(err)
            if kind == Reason.MAAS_AUTH_FAILED:
                message = f"MAAS at {input.account.url} refused the API key: {failure}"
            elif kind == Reason.MAAS_UNREACHABLE:
                message = (
                    f"gateway {gateway.name} cannot reach MAAS at {input.account.url}: {failure}"
                )
            else:
                message = f"checking MAAS at {input.account.url} failed: {failure}"
            raise ApplicationError(
                message, type=kind or Reason.INTERNAL_ERROR.value, non_retryable=True
            ) from err
