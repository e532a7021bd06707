"""Fault injection: deploy failures, HTTP 503s and added latency, changeable at run time."""

from __future__ import annotations

import random

from maas_emulator.config import FaultConfig, FaultUpdate


class Faults:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng

    def update(self, change: FaultUpdate) -> FaultConfig:
        merged = self.config.model_dump() | change.model_dump(exclude_none=True)
        self.config = FaultConfig.model_validate(merged)
        return self.config

    def deploy_fails(self, system_id: str, hostname: str) -> bool:
        named = self.config.fail_machines
        if system_id in named or hostname in named:
            return True
        return self._rng.random() < self.config.deploy_failure_rate

    def answer_503(self) -> bool:
        return self._rng.random() < self.config.http_503_rate

    @property
    def latency_seconds(self) -> float:
        return self.config.latency_ms / 1000
