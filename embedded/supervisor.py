"""Child-process supervision for the embedded stack: start, wait ready, kill, restart, stop.

Each child runs in its own session (process group), so stopping it also stops anything it
spawned, and nothing outlives the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[bool]]


class ChildFailedError(RuntimeError):
    """A child exited or never became ready; the message carries the end of its log."""


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: ReadyCheck | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    restarts: int = 0


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, Child] = {}

    async def start(self, spec: ChildSpec) -> Child:
        log_path = self.log_dir / f"{spec.name}.log"
        # Popen only forks and execs; a sync handle lets stop/kill work from any context.
        with log_path.open("ab") as out:
            process = subprocess.Popen(  # noqa: ASYNC220
                spec.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spec.env},
                start_new_session=True,
            )
        previous = self.children.get(spec.name)
        child = Child(spec, process, log_path, restarts=previous.restarts + 1 if previous else 0)
        self.children[spec.name] = child
        await self._wait_ready(child)
        log.info("%s ready (pid %d)", spec.name, process.pid)
        return child

    async def _wait_ready(self, child: Child) -> None:
        if child.spec.ready is None:
            return
        deadline = asyncio.get_running_loop().time() + child.spec.ready_timeout
        while True:
            if child.process.poll() is not None:
                raise ChildFailedError(
                    f"{child.spec.name} exited with {child.process.returncode}:\n"
                    + log_tail(child.log_path)
                )
            with contextlib.suppress(Exception):
                if await child.spec.ready():
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise ChildFailedError(
                    f"{child.spec.name} not ready after {child.spec.ready_timeout:.0f}s:\n"
                    + log_tail(child.log_path)
                )
            await asyncio.sleep(0.2)

    def alive(self, name: str) -> bool:
        child = self.children.get(name)
        return child is not None and child.process.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL a child and its process group, as a crash would."""
        child = self.children[name]
        _signal_group(child.process, signal.SIGKILL)
        child.process.wait()

    async def stop(self, name: str) -> None:
        child = self.children.get(name)
        if child is None or child.process.poll() is not None:
            return
        _signal_group(child.process, signal.SIGTERM)
        try:
            await asyncio.to_thread(child.process.wait, child.spec.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", name, child.spec.stop_timeout)
            self.kill(name)

    async def restart(self, name: str) -> Child:
        await self.stop(name)
        return await self.start(self.children[name].spec)

    async def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            await self.stop(name)

    def exited(self) -> list[str]:
        return [n for n, c in self.children.items() if c.process.poll() is not None]


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
