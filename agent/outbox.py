"""Reports waiting to reach the control plane, in order, with retry backoff.

Status reports and command results are never dropped: they leave the outbox only once the
API accepted them (or refused them for good). A pending heartbeat is replaced by a newer one,
because only the latest liveness signal is worth sending after an outage.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel


class ReportKind(StrEnum):
    HEARTBEAT = "heartbeat"
    STATUS = "status"
    COMMAND_RESULT = "command_result"


@dataclass(frozen=True)
class Report:
    """One POST to the agent API; `key` lets the API drop a retried duplicate."""

    kind: ReportKind
    path: str
    body: BaseModel
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


class Outbox:
    def __init__(self) -> None:
        self._items: deque[Report] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, report: Report) -> None:
        if report.kind is ReportKind.HEARTBEAT:
            self._items = deque(r for r in self._items if r.kind is not ReportKind.HEARTBEAT)
        self._items.append(report)

    def head(self) -> Report | None:
        return self._items[0] if self._items else None

    def pop(self, report: Report) -> None:
        """Remove `report` once delivered; a heartbeat may already have been replaced."""
        if self._items and self._items[0] is report:
            self._items.popleft()


class Backoff:
    """Exponential backoff with jitter (half to full delay), so a fleet does not retry in lockstep."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self._initial = initial
        self._maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._maximum, self._initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
