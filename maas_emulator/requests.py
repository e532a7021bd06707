"""The emulator's request log: which API calls arrived, in order, for tests and benchmarks
that count what a client asks of MAAS (`GET /_emulator/requests`)."""

from __future__ import annotations

import time
from collections import Counter, deque

from pydantic import BaseModel, Field

# Enough for any test's window; a long benchmark reads the counters, which never drop.
KEPT = 20_000


class LoggedRequest(BaseModel):
    seq: int
    handler: str = Field(description='e.g. "MachinesHandler", or "describe"')
    action: str = Field(description='e.g. "read", "allocate"')
    method: str
    query: dict[str, list[str]] = Field(
        default_factory=dict, description="query parameters of a GET (reads carry their filters)"
    )
    at: float


class RequestLogPage(BaseModel):
    total: int
    counts: dict[str, int] = Field(description='"Handler.action": calls since start')
    requests: list[LoggedRequest]


class RequestLog:
    """Every API request, kept for the last KEPT; POST bodies are never kept (user data)."""

    def __init__(self) -> None:
        self._kept: deque[LoggedRequest] = deque(maxlen=KEPT)
        self._counts: Counter[str] = Counter()
        self.total = 0

    def record(
        self, handler: str, action: str, method: str, query: dict[str, list[str]] | None = None
    ) -> None:
        self.total += 1
        self._counts[f"{handler}.{action}"] += 1
        self._kept.append(
            LoggedRequest(
                seq=self.total,
                handler=handler,
                action=action,
                method=method,
                query=query or {},
                at=time.time(),
            )
        )

    def page(self, since: int = 0) -> RequestLogPage:
        """The counters, and the kept requests numbered above `since`."""
        return RequestLogPage(
            total=self.total,
            counts=dict(self._counts),
            requests=[r for r in self._kept if r.seq > since],
        )
