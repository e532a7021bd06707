"""Child-process supervision for the embedded stack: start, wait ready, kill, restart, stop.

Each child runs in its own session (process group), so stopping it also stops anything it
spawned. On Linux each child also asks the kernel to SIGKILL it when the supervisor dies, so
nothing outlives the supervisor, however it dies (SIGKILL included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

INSTANCE_ENV = "METALGATE_INSTANCE_ID"

# Run in the child between fork and the real program: PR_SET_PDEATHSIG (1) survives execve,
# so the Go Temporal server gets it as well as the Python children. The parent check closes
# the race where the supervisor died before prctl ran.
_PDEATHSIG_SHIM = (
    "import ctypes,os,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "if libc.prctl(1,9,0,0,0)!=0:raise OSError(ctypes.get_errno(),'prctl(PR_SET_PDEATHSIG)')\n"
    "if os.getppid()!=int(sys.argv[1]):os._exit(70)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


class ChildFailedError(RuntimeError):
    """A child exited or never became ready; the message carries the end of its log."""


class RegistrationFailedError(RuntimeError):
    """A one-shot setup step run by the supervisor (e.g. registering the local PCG) failed."""


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: ReadyCheck | None = None
    ready_timeout: float = 60.0
    # Stops run in two waves (see stop_all): two of these must fit in Ctrl-C's 5 s.
    stop_timeout: float = 2.0
    # Run after every start once ready, a restart by the watcher included.
    on_ready: Callable[[], Awaitable[None]] | None = None


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    instance_id: str
    started_at: float
    restarts: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def listens_on(self, port: int) -> bool:
        """True when this child (or a process it spawned) holds the listening socket."""
        try:
            own = psutil.Process(self.pid)
            family = [own, *own.children(recursive=True)]
        except psutil.NoSuchProcess:
            return False
        for process in family:
            with contextlib.suppress(psutil.Error):
                for conn in process.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                        return True
        return False


# A readiness check gets the child it checks, so it can ask for *that* child's answer (its
# pid, its instance id), never just "something answers on that port".
ReadyCheck = Callable[[Child], Awaitable[bool]]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def tied_to_parent(argv: list[str]) -> list[str]:
    """`argv` run so that the kernel kills it when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return argv
    program = argv[0] if os.path.isabs(argv[0]) else _which(argv[0])
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid()), program, *argv[1:]]


def _which(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found on PATH")
    return found


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, Child] = {}

    async def start(self, spec: ChildSpec) -> Child:
        log_path = self.log_dir / f"{spec.name}.log"
        instance_id = uuid.uuid4().hex
        # Popen only forks and execs; a sync handle lets stop/kill work from any context.
        # It runs on the event loop's thread: the parent-death signal fires when the thread
        # that forked the child exits, so it must be the one that lives as long as we do.
        with log_path.open("ab") as out:
            process = subprocess.Popen(  # noqa: ASYNC220
                tied_to_parent(spec.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spec.env, INSTANCE_ENV: instance_id},
                start_new_session=True,
            )
        previous = self.children.get(spec.name)
        child = Child(
            spec,
            process,
            log_path,
            instance_id,
            started_at=time.time(),
            restarts=previous.restarts + 1 if previous else 0,
        )
        self.children[spec.name] = child
        await self._wait_ready(child)
        log.info("%s ready (pid %d)", spec.name, process.pid)
        if spec.on_ready is not None:
            await spec.on_ready()
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
                if await child.spec.ready(child):
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

    async def stop_all(self, last: tuple[str, ...] = ()) -> None:
        """Stop every child at once, then those named in `last` (what the others talk to)."""
        first = [n for n in self.children if n not in last]
        await asyncio.gather(*(self.stop(n) for n in first))
        await asyncio.gather(*(self.stop(n) for n in last if n in self.children))

    def exited(self) -> list[str]:
        return [n for n, c in self.children.items() if c.process.poll() is not None]


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
