"""Fault injection: deploy failures, dead machines, HTTP 503s, lost answers and added latency,
changeable at run time.

A lost answer is the nastiest of them for a client: the operation happened (a machine is
allocated, a release started), but the caller sees a 503 or a cut connection and cannot
tell it from an operation that never ran.
"""

from __future__ import annotations

import random

from maas_emulator.config import FaultConfig, FaultUpdate

LOST_AS_503 = "503"
LOST_AS_CUT = "cut"


class Faults:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng

    def update(self, change: FaultUpdate) -> FaultConfig:
        merged = self.config.model_dump() | change.model_dump(exclude_none=True)
        self.config = FaultConfig.model_validate(merged)
        return self.config

    def dead(self, system_id: str, hostname: str) -> bool:
        return system_id in self.config.dead_machines or hostname in self.config.dead_machines

    def deploy_fails(self, system_id: str, hostname: str) -> bool:
        named = self.config.fail_machines
        if system_id in named or hostname in named or self.dead(system_id, hostname):
            return True
        return self._rng.random() < self.config.deploy_failure_rate

    def answer_503(self) -> bool:
        return self._rng.random() < self.config.http_503_rate

    def lose_answer(self) -> str | None:
        """After an applied POST: None to answer, else how the answer is lost (503 or cut)."""
        if self._rng.random() >= self.config.lost_answer_rate:
            return None
        return self._rng.choice([LOST_AS_503, LOST_AS_CUT])

    @property
    def latency_seconds(self) -> float:
        return self.config.latency_ms / 1000
