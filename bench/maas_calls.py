"""MAAS calls through python-libmaas against the emulator on loopback: the client's
throughput, and what the gateway asks of MAAS per cluster and while many clusters deploy.

Throughput: each worker loops allocate -> deploy -> release (3 MAAS calls) with zero
durations. python-libmaas costs several times more CPU per call than the emulator, so the
load comes from `processes` client processes (each with `concurrency` workers), as several
gateway workers would.

Lifecycles: the gateway's own MAAS activities (one `MaasActivities`, as in one gateway
worker process, with its one watcher) take each cluster through acquire, deploy, wait
Deployed, find owned, release and wait released, in the saga's order, with the saga's poll
intervals; the emulator's request log counts every call. Run with one cluster (the floor per
lifecycle) and with BENCH_MAAS_CLUSTERS in flight at once: the calls/s while they all wait
for their deploys (BENCH_MAAS_DEPLOY_SECONDS) must not grow with them.

    .venv/bin/python -m bench.maas_calls [--seconds 10] [--concurrency 16] [--processes 2]
        [--clusters 100] [--deploy-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import maas.client
from temporalio.testing import ActivityEnvironment

from activities.maas import MaasActivities
from activities.models import (
    AcquireMachinesInput,
    DeployMachineInput,
    FindOwnedInput,
    ReleaseMachinesInput,
    WaitDeployedInput,
    WaitReleasedInput,
)
from domain.cluster import ErasePolicy, NodePool
from domain.maas import MaasAccount
from workflows.contracts import LifecycleTimeouts

RESULTS = Path(__file__).parent / "results" / "maas_calls.json"
API_KEY = "benchconsumer:benchtoken:benchsecret"
CALLS_PER_CYCLE = 3
# One control-plane node and two workers, like the lifecycle benchmark's clusters.
POOLS = [NodePool(name="cp", count=1), NodePool(name="workers", count=2)]
MACHINES_PER_CLUSTER = sum(p.count for p in POOLS)
SAMPLE_EVERY = 0.25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _emulator(
    machines: int, deploy_seconds: float, release_seconds: float
) -> AsyncIterator[str]:
    """The MAAS emulator as its own process, like a real MAAS; yields its API URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "maas_emulator",
            *("--port", str(port), "--data-dir", data_dir, "--api-key", API_KEY),
            *("--machines", str(machines), "--deploy-seconds", str(deploy_seconds)),
            *("--release-seconds", str(release_seconds), "--log-level", "WARNING"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            await _until_healthy(port)
            yield f"http://127.0.0.1:{port}/MAAS/"
        finally:
            process.terminate()
            await process.wait()


async def _until_healthy(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"http://127.0.0.1:{port}/_emulator/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the MAAS emulator did not start")


async def _logged(url: str) -> dict[str, Any]:
    """The emulator's request counters (total, and per handler.action) without the log."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url.replace("/MAAS/", "/_emulator/requests"),
            params={"since": str(2**62)},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as r,
    ):
        r.raise_for_status()
        page: dict[str, Any] = await r.json()
    return page


# --- throughput ----------------------------------------------------------------------------


async def _cycles(
    url: str, seconds: float, concurrency: int, prefix: str
) -> tuple[int, float, float]:
    """Cycles done in `seconds`, with the wall-clock start and end of the loop (a process's
    start-up is not counted: under load spawning it takes longer than the run)."""
    client = await maas.client.connect(url, apikey=API_KEY)
    cycles = 0
    started = time.time()
    deadline = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal cycles
        while time.monotonic() < deadline:
            machine = await client.machines.allocate(agent_name=f"{prefix}-{index}")
            await machine.deploy(user_data=b"#cloud-config\n")
            await machine.release()
            cycles += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return cycles, started, time.time()


def _client_process(
    url: str, seconds: float, concurrency: int, prefix: str
) -> tuple[int, float, float]:
    return asyncio.run(_cycles(url, seconds, concurrency, prefix))


async def measure_throughput(seconds: float, concurrency: int, processes: int) -> dict[str, Any]:
    async with _emulator(concurrency * processes * 2, 0, 0) as url:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            pending = [
                pool.apply_async(_client_process, (url, seconds, concurrency, f"bench{p}"))
                for p in range(processes)
            ]
            done = [await asyncio.to_thread(job.get) for job in pending]
    cycles = sum(n for n, _, _ in done)
    # From the first client's start to the last one's end: any stagger counts against us.
    elapsed = max(end for _, _, end in done) - min(start for _, start, _ in done)
    return {
        "calls": cycles * CALLS_PER_CYCLE,
        "cycles": cycles,
        "seconds": round(elapsed, 3),
        "client_processes": processes,
        "concurrency_per_process": concurrency,
        "calls_per_second": round(cycles * CALLS_PER_CYCLE / elapsed, 1),
    }


# --- lifecycles ----------------------------------------------------------------------------


async def _activity(fn: Any, arg: Any) -> Any:
    return await ActivityEnvironment().run(fn, arg)


class _Waiting:
    """How many wait-deployed activities are waiting now."""

    def __init__(self) -> None:
        self.count = 0

    async def wait_deployed(self, acts: MaasActivities, arg: WaitDeployedInput) -> None:
        self.count += 1
        try:
            await _activity(acts.wait_deployed, arg)
        finally:
            self.count -= 1


async def _lifecycle(
    acts: MaasActivities, account: MaasAccount, cluster: str, waiting: _Waiting
) -> None:
    """The gateway's share of one cluster's create and delete, in the saga's order."""
    timeouts = LifecycleTimeouts()
    taken = await _activity(
        acts.acquire_machines,
        AcquireMachinesInput(account=account, cluster_id=cluster, request_id="create", pools=POOLS),
    )
    system_ids = [m.system_id for m in taken.machines]
    for system_id in system_ids:
        deploy = DeployMachineInput(
            account=account,
            cluster_id=cluster,
            system_id=system_id,
            distro_series="jammy",
            user_data="#cloud-config\n",
        )
        await _activity(acts.deploy_machine, deploy)
    await asyncio.gather(
        *(
            waiting.wait_deployed(
                acts,
                WaitDeployedInput(
                    account=account,
                    cluster_id=cluster,
                    system_id=system_id,
                    poll_interval_seconds=timeouts.deploy_poll_interval,
                ),
            )
            for system_id in system_ids
        )
    )
    owned = await _activity(acts.find_owned, FindOwnedInput(account=account, cluster_id=cluster))
    release = ReleaseMachinesInput(
        account=account,
        cluster_id=cluster,
        system_ids=[m.system_id for m in owned.machines],
        erase_policy=ErasePolicy.NONE,
    )
    await _activity(acts.release_machines, release)
    await _activity(
        acts.wait_released,
        WaitReleasedInput(
            account=account,
            cluster_id=cluster,
            poll_interval_seconds=timeouts.release_poll_interval,
        ),
    )


async def measure_lifecycles(clusters: int, deploy_seconds: float) -> dict[str, Any]:
    """`clusters` lifecycles at once on one gateway's activities: MAAS calls per lifecycle,
    and MAAS calls/s over the window in which every machine waits for its deploy."""
    machines = clusters * MACHINES_PER_CLUSTER
    async with _emulator(machines + machines // 10 + 3, deploy_seconds, 1.0) as url:
        account = MaasAccount(url=url, api_key=API_KEY)
        acts = MaasActivities()
        waiting = _Waiting()
        before = await _logged(url)
        samples: list[tuple[float, int, int]] = []  # (time, requests so far, deploys waited on)
        started = time.monotonic()
        running = asyncio.gather(
            *(_lifecycle(acts, account, f"bench-{n:05d}", waiting) for n in range(clusters))
        )
        while not running.done():
            logged = await _logged(url)
            samples.append((time.monotonic(), logged["total"], waiting.count))
            await asyncio.wait({running}, timeout=SAMPLE_EVERY)
        await running
        elapsed = time.monotonic() - started
        after = await _logged(url)
    calls = after["total"] - before["total"]
    counts = {
        name: n - before["counts"].get(name, 0)
        for name, n in sorted(after["counts"].items())
        if n > before["counts"].get(name, 0)
    }
    # Every machine deploying and waited on: nothing but the watcher reads MAAS then. A
    # window shorter than two poll intervals says nothing (raise BENCH_MAAS_DEPLOY_SECONDS).
    interval = LifecycleTimeouts().deploy_poll_interval
    window = [(t, total) for t, total, waited in samples if waited == machines]
    span = window[-1][0] - window[0][0] if window else 0.0
    waiting_rate = None
    if span >= 2 * interval:
        waiting_rate = round((window[-1][1] - window[0][1]) / span, 2)
    return {
        "clusters": clusters,
        "machines": machines,
        "seconds": round(elapsed, 2),
        "calls": calls,
        "calls_per_lifecycle": round(calls / clusters, 1),
        "calls_by_kind": counts,
        "all_deploying_window_s": round(span, 2),
        "calls_per_s_while_all_deploy": waiting_rate,
        # What a poll per machine per activity (the design before the watcher) would cost.
        "per_machine_polling_calls_per_s": round(machines / interval, 1),
    }


def _sizes(clusters: int | None, deploy_seconds: float | None) -> tuple[int, float]:
    env = os.environ.get
    return (
        clusters if clusters is not None else int(env("BENCH_MAAS_CLUSTERS", "100")),
        deploy_seconds
        if deploy_seconds is not None
        else float(env("BENCH_MAAS_DEPLOY_SECONDS", "20")),
    )


async def run(
    seconds: float = 10.0,
    concurrency: int = 16,
    processes: int = 2,
    clusters: int | None = None,
    deploy_seconds: float | None = None,
) -> dict[str, Any]:
    """Run the benchmark; answer the figures also written to bench/results/maas_calls.json.

    `clusters` and `deploy_seconds` default to BENCH_MAAS_CLUSTERS (100) and
    BENCH_MAAS_DEPLOY_SECONDS (20: long enough that the last cluster starts deploying before
    the first one's machines are done).
    """
    clusters, deploy_seconds = _sizes(clusters, deploy_seconds)
    result: dict[str, Any] = {
        "benchmark": "maas_calls",
        "cpu_count": multiprocessing.cpu_count(),
        **await measure_throughput(seconds, concurrency, processes),
    }
    in_flight = sorted({1, clusters})
    result["lifecycles"] = [await measure_lifecycles(n, deploy_seconds) for n in in_flight]
    floor = result["lifecycles"][0]
    result["calls_per_cluster_lifecycle"] = floor["calls_per_lifecycle"]
    result["calls_per_s_while_deploying"] = {
        str(life["clusters"]): life["calls_per_s_while_all_deploy"] for life in result["lifecycles"]
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--clusters", type=int, default=None)
    parser.add_argument("--deploy-seconds", type=float, default=None)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.seconds, args.concurrency, args.processes, args.clusters, args.deploy_seconds)
    )
    print(
        f"{result['calls_per_second']} MAAS calls/s through python-libmaas "
        f"({result['calls']} calls in {result['seconds']} s, {result['client_processes']} "
        f"client processes x {result['concurrency_per_process']} workers)"
    )
    for life in result["lifecycles"]:
        print(
            f"{life['clusters']} cluster(s) at once: {life['calls_per_lifecycle']} MAAS calls "
            f"per lifecycle; {life['calls_per_s_while_all_deploy']} calls/s while all "
            f"{life['machines']} machines deploy (over {life['all_deploying_window_s']} s; a "
            f"poll per machine would be {life['per_machine_polling_calls_per_s']}/s)"
        )


if __name__ == "__main__":
    main()
