"""Helpers for tests that run workflows on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.worker import Worker

T = TypeVar("T")


def new_worker(
    client: Client,
    *workflows: type,
    activities: Sequence[Callable[..., Any]] = (),
    task_queue: str | None = None,
    **kwargs: Any,
) -> Worker:
    """A worker on a unique task queue unless one is given."""
    return Worker(
        client,
        task_queue=task_queue or f"tq-{uuid.uuid4()}",
        workflows=list(workflows),
        activities=list(activities),
        **kwargs,
    )


async def assert_eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 15.0, interval: float = 0.1
) -> T:
    """Retry an async assertion until it passes or the timeout expires."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(interval)
