"""Boot hooks: what a machine "runs" when it reaches Deployed, and its counterpart on release.

A hook is any object with `async def __call__(event: HookEvent) -> None`. Hooks never block the
status machine: `HookRunner` fires them as background tasks and only logs their failures.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Literal, Protocol

import aiohttp
from pydantic import BaseModel

log = logging.getLogger(__name__)


class HookEvent(BaseModel):
    event: Literal["deployed", "released"]
    system_id: str
    hostname: str
    ip_addresses: list[str]
    user_data: bytes = b""


class MachineHook(Protocol):
    async def __call__(self, event: HookEvent) -> None: ...


async def null_hook(event: HookEvent) -> None:
    """The default hook: machines boot into nothing."""


class HttpHook:
    """POSTs each event as JSON to `url`, retrying with backoff; the body carries the user
    data base64-encoded under `user_data_b64`."""

    def __init__(self, url: str, attempts: int = 5, first_delay: float = 0.2) -> None:
        self._url = url
        self._attempts = attempts
        self._first_delay = first_delay
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, event: HookEvent) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = event.model_dump(exclude={"user_data"})
        body["user_data_b64"] = base64.b64encode(event.user_data).decode()
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._session.post(self._url, json=body) as response:
                    if response.status < 500:
                        if response.status >= 400:
                            log.warning("boot hook %s answered %s", self._url, response.status)
                        return
            except (aiohttp.ClientError, TimeoutError) as error:
                log.info("boot hook attempt %d to %s failed: %s", attempt, self._url, error)
            await asyncio.sleep(delay)
            delay *= 2
        log.warning("boot hook gave up on %s for %s", event.event, event.system_id)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class HookRunner:
    """Fires hook calls as tasks, keeping references so they are not garbage-collected."""

    def __init__(self, hook: MachineHook) -> None:
        self._hook = hook
        self._tasks: set[asyncio.Task[None]] = set()

    def fire(self, event: HookEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._run(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: HookEvent) -> None:
        try:
            await self._hook(event)
        except Exception:
            log.exception("boot hook failed for %s %s", event.event, event.system_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        close = getattr(self._hook, "close", None)
        if close is not None:
            await close()
