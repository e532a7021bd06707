"""The API's Temporal connection: made on first use, so the API starts and reads without it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import TypeVar

from temporalio.client import Client, Interceptor

from runtime.settings import Settings
from runtime.temporal import connect

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 5.0
# Per-call bounds: the client retries an unreachable server for many seconds on its own,
# longer than an HTTP caller (or a fleet of agents) should wait.
RPC_TIMEOUT = timedelta(seconds=5)
AGENT_SIGNAL_TIMEOUT = timedelta(seconds=2)


class TemporalUnavailable(Exception):
    """Temporal did not answer; routes that need it answer 503."""


class TemporalGate:
    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self._settings = settings
        self._client = client
        self._interceptors = interceptors
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings, interceptors=self._interceptors),
                        CONNECT_TIMEOUT_SECONDS,
                    )
                except (TimeoutError, RuntimeError, OSError) as exc:
                    log.warning(
                        "Temporal at %s unreachable: %s", self._settings.temporal_address, exc
                    )
                    raise TemporalUnavailable(
                        f"Temporal at {self._settings.temporal_address} is unreachable; "
                        "start it (metalgate up) or fix METALGATE_TEMPORAL_ADDRESS"
                    ) from exc
            return self._client


async def bounded(call: Awaitable[T], within: timedelta = RPC_TIMEOUT) -> T:
    """Await a Temporal call, answering TemporalUnavailable instead of waiting on retries."""
    try:
        return await asyncio.wait_for(call, within.total_seconds())
    except TimeoutError as exc:
        raise TemporalUnavailable(
            f"Temporal did not answer within {within.total_seconds():.0f}s; retry later"
        ) from exc
