"""MAAS activities on the cluster's gateway queue, with an absent gateway made visible.

A task queue nobody polls looks like a hang. Each call first gets a short schedule-to-start
(`gateway_probe`); when that expires the status says "waiting for gateway <name>" and the
call is scheduled again with the rest of `gateway_give_up`, after which it fails with
GatewayUnavailable. The reason shown before the wait comes back once a call completes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutError,
    TimeoutType,
)
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.models import (
        ACQUIRE_MACHINES,
        FIND_OWNED,
        MAAS_NON_RETRYABLE,
        RELEASE_MACHINES,
        WAIT_DEPLOYED,
        WAIT_RELEASED,
        AcquireMachinesInput,
        AcquireMachinesResult,
        FindOwnedInput,
        FindOwnedResult,
        ReleaseMachinesInput,
        ReleaseMachinesResult,
    )
    from domain.cluster import NodePool
    from domain.lifecycle import ClusterRef, GatewayRef, LifecycleTimeouts
    from domain.naming import gateway_queue
    from domain.phases import Reason
    from workflows.status import StatusRecorder

R = TypeVar("R")

# An acquire that could not give a listed zone its share says so in the cluster's events.
PATCH_ZONE_NOTES = "acquire-zone-notes"

# MaasUnreachable and 5xx retry with backoff for a few minutes, then the saga fails with a
# reason instead of retrying forever against a MAAS that is down.
MAAS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=MAAS_NON_RETRYABLE,
)


def is_schedule_to_start_timeout(err: BaseException) -> bool:
    return (
        isinstance(err, ActivityError)
        and isinstance(err.cause, TimeoutError)
        and err.cause.type == TimeoutType.SCHEDULE_TO_START
    )


def root_cause(err: BaseException) -> BaseException:
    """The failure an ActivityError wraps (an ApplicationError, a timeout, a cancel)."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return err


def error_type(err: BaseException) -> str | None:
    cause = root_cause(err)
    return cause.type if isinstance(cause, ApplicationError) else None


REASONS = frozenset(r.value for r in Reason)

# MAAS activities heartbeat while a call is in flight, so a gateway replica killed mid-call
# is noticed in this long and the call moves to another replica, not after start-to-close.
MAAS_HEARTBEAT_SECONDS = 30.0


def failure_reason(err: BaseException) -> tuple[Reason, str]:
    """The named reason and a message for whatever ended a saga."""
    cause = root_cause(err)
    if isinstance(cause, ApplicationError) and cause.type in REASONS:
        return Reason(cause.type), cause.message
    if isinstance(err, ActivityError) and isinstance(cause, TimeoutError):
        if err.activity_type == WAIT_DEPLOYED:
            return Reason.DEPLOY_TIMEOUT, "a machine did not reach Deployed in time"
        if err.activity_type == WAIT_RELEASED:
            return Reason.MACHINES_STILL_OWNED, "MAAS did not release the machines in time"
        return Reason.INTERNAL_ERROR, f"{err.activity_type} timed out ({cause.type})"
    return Reason.INTERNAL_ERROR, str(cause)


class GatewayCalls:
    """Calls MAAS activities on one gateway's queue for one workflow."""

    def __init__(
        self, gateway: GatewayRef, timeouts: LifecycleTimeouts, status: StatusRecorder
    ) -> None:
        self.gateway = gateway
        self.timeouts = timeouts
        self.status = status

    async def run(
        self,
        activity: str,
        arg: BaseModel,
        result_type: type[R],
        *,
        start_to_close: float | None = None,
        heartbeat: float | None = None,
        retry: RetryPolicy = MAAS_RETRY,
        schedule_to_close: float | None = None,
    ) -> R:
        give_up_at = workflow.time() + self.timeouts.gateway_give_up
        schedule_to_start = self.timeouts.gateway_probe
        while True:
            try:
                result: Any = await workflow.execute_activity(
                    activity,
                    arg,
                    result_type=result_type,
                    task_queue=gateway_queue(self.gateway.id),
                    schedule_to_start_timeout=timedelta(seconds=schedule_to_start),
                    start_to_close_timeout=timedelta(
                        seconds=start_to_close or self.timeouts.maas_call
                    ),
                    schedule_to_close_timeout=(
                        timedelta(seconds=schedule_to_close) if schedule_to_close else None
                    ),
                    heartbeat_timeout=timedelta(seconds=heartbeat or MAAS_HEARTBEAT_SECONDS),
                    retry_policy=retry,
                    # A cancelled acquire or deploy may still be acting in MAAS: whoever
                    # cancelled (compensation, delete) goes on only once it has stopped.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except ActivityError as err:
                if not is_schedule_to_start_timeout(err):
                    raise
                remaining = give_up_at - workflow.time()
                if remaining <= 0:
                    raise ApplicationError(
                        f"gateway {self.gateway.name} did not pick up {activity} in "
                        f"{self.timeouts.gateway_give_up:.0f}s; check that it is running",
                        type=Reason.GATEWAY_UNAVAILABLE.value,
                        non_retryable=True,
                    ) from err
                workflow.logger.warning(
                    "gateway %s is not polling %s; waiting up to %.0fs more",
                    self.gateway.name,
                    gateway_queue(self.gateway.id),
                    remaining,
                )
                await self.status.waiting_for_gateway(self.gateway.name)
                # One long schedule-to-start: the task starts the moment a gateway polls.
                schedule_to_start = remaining
                continue
            await self.status.gateway_back(self.gateway.name)
            return result

    # The cluster's MAAS calls, each input built here once.

    async def acquire(
        self,
        cluster: ClusterRef,
        request_id: str,
        pools: list[NodePool],
        exclude_system_ids: list[str] | None = None,
        replacing: list[str] | None = None,
    ) -> AcquireMachinesResult:
        """Allocate and mark machines for one request; a retry adopts what it already took.

        `replacing`: machines about to leave, so the zone spread gives their zones back.
        """
        acquired: AcquireMachinesResult = await self.run(
            ACQUIRE_MACHINES,
            AcquireMachinesInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                request_id=request_id,
                pools=pools,
                exclude_system_ids=exclude_system_ids or [],
                installation_id=cluster.installation_id,
                replacing=replacing or [],
            ),
            AcquireMachinesResult,
        )
        # Results recorded before notes existed have none, so they never reach the patch.
        if acquired.notes and workflow.patched(PATCH_ZONE_NOTES):
            await self.status.event("; ".join(acquired.notes))
        return acquired

    async def release(
        self, cluster: ClusterRef, system_ids: list[str], comment: str
    ) -> ReleaseMachinesResult:
        """Give machines back to MAAS with the cluster's erase policy."""
        return await self.run(
            RELEASE_MACHINES,
            ReleaseMachinesInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                system_ids=system_ids,
                erase_policy=cluster.spec.erase_policy,
                comment=comment,
            ),
            ReleaseMachinesResult,
        )

    async def find_owned(self, cluster: ClusterRef) -> FindOwnedResult:
        """Every machine MAAS lists as the cluster's (found by ownership mark)."""
        return await self.run(
            FIND_OWNED,
            FindOwnedInput(account=cluster.account, cluster_id=cluster.cluster_id),
            FindOwnedResult,
        )
