"""The chaos driver's hand: SIGKILL a stack process at a random moment, then start it again.

Kills go one at a time through the supervisor (SIGKILL of the process group, as a crash),
so each component is down for a random while and then comes back the way `metalgate up`
started it. Every kill and every failed restart is counted for the summary.

A `pausable` target (a gateway replica) is sometimes SIGSTOPped instead and SIGCONTed after
`paused` seconds, past the activities' heartbeat timeout: its work moves to the other
replica, and then the paused one wakes up mid-call, as a VM stalled by its host does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass, field

from embedded.supervisor import ChildFailedError, Supervisor

log = logging.getLogger(__name__)

RESTART_ATTEMPTS = 5


@dataclass
class Killer:
    supervisor: Supervisor
    targets: list[str]
    rng: random.Random
    pause: tuple[float, float] = (4.0, 12.0)
    downtime: tuple[float, float] = (0.5, 4.0)
    pausable: list[str] = field(default_factory=list)
    paused: tuple[float, float] = (35.0, 45.0)
    pause_share: float = 0.5
    kills: Counter[str] = field(default_factory=Counter)
    pauses: Counter[str] = field(default_factory=Counter)
    failed_restarts: Counter[str] = field(default_factory=Counter)

    _reviving: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Kill and restart until cancelled; a cancel mid-outage still restarts the victim."""
        while True:
            await asyncio.sleep(self.rng.uniform(*self.pause))
            victim = self.rng.choice(self.targets)
            if victim in self.pausable and self.rng.random() < self.pause_share:
                await self.stall(victim)
                continue
            self.supervisor.kill(victim)
            self.kills[victim] += 1
            log.info("chaos: killed %s", victim)
            try:
                await asyncio.sleep(self.rng.uniform(*self.downtime))
            finally:
                # Shielded, so a cancel cannot leave the victim dead; `stop` waits for it.
                self._reviving = asyncio.ensure_future(self.revive(victim))
                await asyncio.shield(self._reviving)

    async def stall(self, name: str) -> None:
        """SIGSTOP a child's process group for a while; it is always SIGCONTed, even on cancel."""
        child = self.supervisor.children[name]
        if child.process.poll() is not None:
            return
        os.killpg(child.process.pid, signal.SIGSTOP)
        self.pauses[name] += 1
        log.info("chaos: paused %s", name)
        try:
            await asyncio.sleep(self.rng.uniform(*self.paused))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGCONT)
            log.info("chaos: resumed %s", name)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Cancel the `run` task and wait until its last victim is back."""
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._reviving is not None:
            await self._reviving

    async def revive(self, name: str) -> None:
        """Start a killed child again; a start can fail while another child is down, so retry."""
        for _ in range(RESTART_ATTEMPTS):
            if self.supervisor.alive(name):
                return
            try:
                await self.supervisor.start(self.supervisor.children[name].spec)
                return
            except ChildFailedError as error:
                self.failed_restarts[name] += 1
                log.warning("chaos: %s did not come back: %s", name, error)
                self.supervisor.kill(name)
                await asyncio.sleep(2.0)
        raise RuntimeError(f"{name} did not restart after {RESTART_ATTEMPTS} attempts")

    def down(self) -> list[str]:
        """Targets not running now (empty when the stack is whole)."""
        return [name for name in self.targets if not self.supervisor.alive(name)]
