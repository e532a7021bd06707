"""A tiny workflow that runs one activity by name on a given queue, so tests exercise the
MAAS activities exactly as Temporal schedules them (encrypted payloads, retries, heartbeats)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import MAAS_NON_RETRYABLE


class RunActivityInput(BaseModel):
    activity: str
    arg: dict[str, Any]
    task_queue: str
    max_attempts: int = 3
    start_to_close_seconds: float = 30.0
    schedule_to_start_seconds: float | None = None
    heartbeat_seconds: float | None = None


class RunActivityResult(BaseModel):
    result: dict[str, Any] = Field(default_factory=dict)


@workflow.defn(name="test.run_activity")
class RunActivity:
    @workflow.run
    async def run(self, input: RunActivityInput) -> RunActivityResult:
        result = await workflow.execute_activity(
            input.activity,
            input.arg,
            task_queue=input.task_queue,
            start_to_close_timeout=timedelta(seconds=input.start_to_close_seconds),
            schedule_to_start_timeout=(
                timedelta(seconds=input.schedule_to_start_seconds)
                if input.schedule_to_start_seconds
                else None
            ),
            heartbeat_timeout=(
                timedelta(seconds=input.heartbeat_seconds) if input.heartbeat_seconds else None
            ),
            retry_policy=RetryPolicy(
                maximum_attempts=input.max_attempts,
                initial_interval=timedelta(milliseconds=200),
                non_retryable_error_types=MAAS_NON_RETRYABLE,
            ),
            result_type=dict,
        )
        return RunActivityResult(result=result)
