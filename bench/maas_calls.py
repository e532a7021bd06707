"""MAAS calls per second through python-libmaas against the emulator on loopback.

Each worker loops allocate -> deploy -> release (3 MAAS calls) with zero durations. The
emulator runs as its own process, like a real MAAS. python-libmaas costs several times more CPU
per call than the emulator, so the load comes from `processes` client processes (each with
`concurrency` workers), as several gateway workers would.

    .venv/bin/python -m bench.maas_calls [--seconds 10] [--concurrency 16] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import maas.client

RESULTS = Path(__file__).parent / "results" / "maas_calls.json"
API_KEY = "benchconsumer:benchtoken:benchsecret"
CALLS_PER_CYCLE = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_emulator(data_dir: str, port: int, machines: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "maas_emulator",
        *("--port", str(port), "--data-dir", data_dir, "--api-key", API_KEY),
        *("--machines", str(machines), "--deploy-seconds", "0", "--release-seconds", "0"),
        *("--log-level", "WARNING"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/_emulator/health") as r:
                    if r.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("the MAAS emulator did not start")


async def _cycles(url: str, seconds: float, concurrency: int, prefix: str) -> int:
    client = await maas.client.connect(url, apikey=API_KEY)
    cycles = 0
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal cycles
        while time.monotonic() < deadline:
            machine = await client.machines.allocate(agent_name=f"{prefix}-{index}")
            await machine.deploy(user_data=b"#cloud-config\n")
            await machine.release()
            cycles += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return cycles


def _client_process(url: str, seconds: float, concurrency: int, prefix: str) -> int:
    return asyncio.run(_cycles(url, seconds, concurrency, prefix))


async def run(seconds: float = 10.0, concurrency: int = 16, processes: int = 2) -> dict[str, Any]:
    """Run the benchmark; answer the figures also written to bench/results/maas_calls.json."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/MAAS/"
    with tempfile.TemporaryDirectory() as data_dir:
        emulator = await _start_emulator(data_dir, port, machines=concurrency * processes * 2)
        try:
            context = multiprocessing.get_context("spawn")
            with context.Pool(processes) as pool:
                started = time.monotonic()
                pending = [
                    pool.apply_async(_client_process, (url, seconds, concurrency, f"bench{p}"))
                    for p in range(processes)
                ]
                cycles = sum([await asyncio.to_thread(job.get) for job in pending])
                elapsed = time.monotonic() - started
        finally:
            emulator.terminate()
            await emulator.wait()
    result = {
        "benchmark": "maas_calls",
        "calls": cycles * CALLS_PER_CYCLE,
        "cycles": cycles,
        "seconds": round(elapsed, 3),
        "client_processes": processes,
        "concurrency_per_process": concurrency,
        "cpu_count": multiprocessing.cpu_count(),
        "calls_per_second": round(cycles * CALLS_PER_CYCLE / elapsed, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds, args.concurrency, args.processes))
    print(
        f"{result['calls_per_second']} MAAS calls/s through python-libmaas "
        f"({result['calls']} calls in {result['seconds']} s, {result['client_processes']} "
        f"client processes x {result['concurrency_per_process']} workers)"
    )


if __name__ == "__main__":
    main()
