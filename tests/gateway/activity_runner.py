"""Run MAAS activities through a real worker and the RunActivity workflow."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from tests.gateway.harness import RunActivity, RunActivityInput

R = TypeVar("R", bound=BaseModel)


async def run_activity(
    client: Client,
    task_queue: str,
    name: str,
    arg: BaseModel,
    result_type: type[R],
    **options: Any,
) -> R:
    """Start the harness workflow on `task_queue` and parse the activity's result."""
    outcome = await client.execute_workflow(
        RunActivity.run,
        RunActivityInput(
            activity=name,
            arg=arg.model_dump(mode="json"),
            task_queue=options.pop("activity_queue", task_queue),
            **options,
        ),
        id=f"test-{name}-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    return result_type.model_validate(outcome.result)


async def activity_failure(
    client: Client, task_queue: str, name: str, arg: BaseModel, **options: Any
) -> ApplicationError:
    """Run an activity expected to fail; answer the ApplicationError it failed with."""
    try:
        await run_activity(client, task_queue, name, arg, BaseModel, **options)
    except WorkflowFailureError as failure:
        activity_error = failure.cause
        assert isinstance(activity_error, ActivityError), failure
        cause = activity_error.cause
        assert isinstance(cause, ApplicationError), activity_error
        return cause
    raise AssertionError(f"{name} succeeded; a failure was expected")
