"""Counters and a bounded-memory latency histogram for the fleet simulator."""

from __future__ import annotations

import math

from pydantic import BaseModel

# Buckets grow by 5 % from 10 µs, so percentiles are within 5 % with a fixed memory cost.
_BASE = 1e-5
_GROWTH = 1.05


class LatencyHistogram:
    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.maximum = 0.0

    def record(self, seconds: float) -> None:
        index = 0 if seconds <= _BASE else math.ceil(math.log(seconds / _BASE, _GROWTH))
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.maximum = max(self.maximum, seconds)

    def percentile(self, fraction: float) -> float:
        """Upper bound of the bucket holding the `fraction` quantile, in seconds; 0 if empty."""
        if not self.count:
            return 0.0
        rank = fraction * self.count
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(_BASE * _GROWTH**index, self.maximum)
        return self.maximum


class FleetStats(BaseModel):
    agents: int
    ready_agents: int
    elapsed_seconds: float
    heartbeats_sent: int
    heartbeats_ok: int
    heartbeat_rate: float
    # Heartbeats the API answered `signalled`: the share the ingest benchmark reports.
    heartbeats_signalled: int = 0
    statuses_ok: int
    results_ok: int
    commands_run: int
    errors: int
    rejected: int
    pending_reports: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
