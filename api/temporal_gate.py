"""The API's Temporal connection: made on first use, so the API starts and reads without it."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client

from runtime.settings import Settings
from runtime.temporal import connect

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0


class TemporalUnavailable(Exception):
    """Temporal did not answer; routes that need it answer 503."""


class TemporalGate:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings), CONNECT_TIMEOUT_SECONDS
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
