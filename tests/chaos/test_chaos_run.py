"""The chaos run: M clusters through create, upgrade and delete while processes die at random.

A full stack on loopback (start_stack, as `metalgate up` runs it, with two PCG replicas and a
faulty emulator) serves the workload while the killer SIGKILLs and restarts the control-plane
worker, each PCG replica, the API and the Temporal server. The MAAS watch looks on the whole
time. In the end: no machine had two owners, every cluster is Deleted (a Failed one with a
named reason first), nothing carries our marks, every accepted request is reflected, the
orphan sweeper released nothing a live cluster held, and no process outlives the stack.

METALGATE_CHAOS_CLUSTERS sets M (20 in CI, 200 in `make chaos`). Every third cluster asks for
a secure erase, which the emulator makes last 6 x METALGATE_CHAOS_RELEASE_SECONDS (default
2): delete must wait it out (15 makes it a minute and a half, past the old fixed wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psutil
import pytest

from cli.api_client import ApiClient
from domain.lifecycle import GatewayRef
from domain.phases import Phase, Reason
from embedded.stack import PCG_NAME, Stack, StackConfig, StackPorts, start_stack
from runtime.schedules import ensure_orphan_sweep_schedule
from tests.chaos.conftest import SUMMARIES
from tests.chaos.diagnose import diagnose
from tests.chaos.killer import Killer
from tests.chaos.maas_watch import MaasWatch, held
from tests.chaos.summary import ChaosSummary
from tests.chaos.workload import ClusterRun, Workload
from tests.support.ports import free_port
from tests.support.temporal import assert_eventually

CLUSTERS = int(os.environ.get("METALGATE_CHAOS_CLUSTERS", "20"))
RELEASE_SECONDS = float(os.environ.get("METALGATE_CHAOS_RELEASE_SECONDS", "2.0"))
SEED = int(os.environ.get("METALGATE_CHAOS_SEED", str(random.SystemRandom().randrange(1 << 30))))
IN_FLIGHT = min(CLUSTERS, 40)
# Quarantined machines (10 % of deploys fail) never come back, so keep a margin beyond the
# clusters in flight, each of which takes one machine.
MACHINES = IN_FLIGHT + CLUSTERS // 5 + 10
FAULTS = {
    "deploy_failure_rate": 0.10,
    "http_503_rate": 0.05,
    "lost_answer_rate": 0.03,
    "latency_ms": 20,
}
# Per-phase bound for one cluster, and for the whole run: it always stops by itself.
PHASE_TIMEOUT = 240.0
STOP_WORKFLOWS_SECONDS = 90.0
RUN_BUDGET = 240.0 + 4.0 * CLUSTERS
KILL_TARGETS_FIXED = ["control-plane-worker", "api", "temporal", "frontdoor"]
TERMINAL_FOR_SWEEP = {Phase.FAILED.value, Phase.DELETED.value}

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(RUN_BUDGET + 240)]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(),
        ui=free_port(),
        api=free_port(),
        maas=free_port(),
        agent_runtime=free_port(),
    )
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=ports,
        maas_machines=MACHINES,
        deploy_seconds=2.0,
        release_seconds=RELEASE_SECONDS,
        emulator_args=[
            "--deploy-failure-rate",
            str(FAULTS["deploy_failure_rate"]),
            "--http-503-rate",
            str(FAULTS["http_503_rate"]),
            "--latency-ms",
            str(FAULTS["latency_ms"]),
            "--lost-answer-rate",
            str(FAULTS["lost_answer_rate"]),
            "--seed",
            str(SEED),
        ],
        pcg_replicas=2,
        # A create that never closes after the delete's cancel (seen: the cancel of an early
        # delete not reaching the create) is terminated within the phase bound; the delete
        # then releases by ownership, which is what this run checks (leaks, surplus).
        extra_env={"METALGATE_STOP_WORKFLOWS_TIMEOUT": str(STOP_WORKFLOWS_SECONDS)},
        system_gateway=False,
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


@pytest.mark.ci_chaos
async def test_chaos_run(stack: Stack) -> None:
    rng = random.Random(SEED)
    gateway_id = stack.info.pcg_gateway_id
    assert gateway_id is not None
    account_id = await asyncio.to_thread(_create_account, stack, gateway_id)
    # Short enough that the sweeper runs many times during the run, under kills too.
    await ensure_orphan_sweep_schedule(
        stack.client,
        GatewayRef(id=gateway_id, name=PCG_NAME),
        every=timedelta(seconds=20),
        grace=timedelta(seconds=10),
    )
    watch = MaasWatch(stack.info.maas_url, stack.maas_key)
    killer = Killer(
        stack.supervisor,
        [*KILL_TARGETS_FIXED, *stack.pcg_replicas],
        random.Random(rng.random()),
        pausable=list(stack.pcg_replicas),
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT + 8) as executor:
        workload = Workload(
            stack.info.api_url,
            stack.admin_key,
            account_id,
            uuid.uuid4().hex[:6],
            PHASE_TIMEOUT,
            executor,
            maas=watch,
        )
        watcher = asyncio.create_task(watch.run())
        chaos = asyncio.create_task(killer.run())
        try:
            runs = await _drive_all(workload, RUN_BUDGET)
        finally:
            await killer.stop(chaos)
        down = killer.down()
        # Releases finish a moment after the last Deleted; the watch keeps looking meanwhile.
        machines = await _settled(watch)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        problems = _check_runs(runs)
        for run in runs:
            if run.cluster_id and run.final_phase != Phase.DELETED:
                problems += [
                    f"{run.name}: {line}" for line in await diagnose(stack.client, run.cluster_id)
                ]
        problems += await asyncio.to_thread(_check_store_view, stack, workload, runs)
        orphan_hits = await asyncio.to_thread(_orphan_releases_of_live_clusters, stack, runs)
    problems += [f"{name} still down after the run" for name in down]
    problems += [str(v) for v in watch.violations]
    leaks = [m["system_id"] for m in machines if held(m)]
    problems += [f"machine {s} still held after every delete" for s in leaks]
    surplus = [f"{r.name}: {s}" for r in runs for s in r.surplus]
    problems += [f"surplus machine marked for {s} at Running, not in the store" for s in surplus]
    problems += orphan_hits
    data_dir = stack.config.data_dir.resolve()
    await stack.stop()
    stragglers = _stragglers(data_dir)
    problems += [f"process left behind: {p}" for p in stragglers]

    summary = ChaosSummary(
        clusters=CLUSTERS,
        seconds=time.monotonic() - started,
        kills=killer.kills,
        pauses=killer.pauses,
        failed_restarts=killer.failed_restarts,
        faults={
            "rates": ", ".join(f"{k}={v}" for k, v in FAULTS.items()),
            "deploys failed (MAAS events)": str(watch.transitions["failed_deployment"]),
            "503s seen by the watch": str(watch.unavailable),
            "seed": str(SEED),
        },
        outcomes=Counter(_outcome(r) for r in runs),
        failed_reasons=Counter(r.failed_reason or "" for r in runs if r.failed_reason is not None),
        api_retries=workload.retries,
        violations=len(watch.violations),
        leaks=len(leaks),
        surplus=len(surplus),
        orphan_releases=len(orphan_hits),
        stragglers=len(stragglers),
        problems=problems,
    )
    SUMMARIES.append(summary.table())
    assert not problems, summary.table()


async def _drive_all(workload: Workload, budget: float) -> list[ClusterRun]:
    """Every cluster's run; one still going when the budget ends is cut and says where it was."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(index: int) -> ClusterRun:
        async with gate:
            return await workload.drive(index)

    tasks = [asyncio.create_task(one(i)) for i in range(CLUSTERS)]
    _, late = await asyncio.wait(tasks, timeout=budget)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    for index in range(CLUSTERS):
        run = workload.runs.setdefault(index, ClusterRun(name=f"chaos-{workload.run_id}-{index}"))
        if tasks[index] in late:
            seen = " -> ".join(run.phases) or "not started"
            run.error = f"still going after the run budget of {budget:.0f}s (seen: {seen})"
    return [workload.runs[i] for i in range(CLUSTERS)]


def _create_account(stack: Stack, gateway_id: str) -> str:
    with ApiClient(stack.info.api_url, stack.admin_key, timeout=60.0) as api:
        account = api.create_account(
            name="chaos-maas",
            maas_url=stack.info.maas_url,
            maas_api_key=stack.maas_key,
            gateway_id=gateway_id,
        )
    return str(account["id"])


async def _settled(watch: MaasWatch) -> list[dict[str, object]]:
    async def nothing_held() -> list[dict[str, object]]:
        machines = await watch.machines()
        assert not [m["system_id"] for m in machines if held(m)]
        return machines

    with contextlib.suppress(AssertionError):
        return await assert_eventually(nothing_held, within=60.0, interval=2.0)
    return await watch.machines()


def _outcome(run: ClusterRun) -> str:
    if run.error:
        return "error"
    if run.deleted_during:
        return f"deleted during {run.deleted_during}"
    path = "failed, then deleted" if run.failed_reason is not None else "running, then deleted"
    return f"{path} (upgraded)" if run.upgraded else path


def _check_runs(runs: list[ClusterRun]) -> list[str]:
    problems = []
    names = {r.value for r in Reason}
    for run in runs:
        if run.error:
            problems.append(f"{run.name}: {run.error}")
        if run.final_phase != Phase.DELETED:
            problems.append(f"{run.name} ended {run.final_phase}, not Deleted")
        if run.failed_reason is not None and run.failed_reason not in names:
            problems.append(f"{run.name} Failed without a named reason ({run.failed_reason!r})")
        if "upgrade" in run.accepted and not run.upgraded:
            problems.append(f"{run.name}: upgrade accepted but never reflected")
    return problems


def _check_store_view(stack: Stack, workload: Workload, runs: list[ClusterRun]) -> list[str]:
    """The API's own list agrees: each accepted create is one cluster, and it is Deleted."""
    ours = {r.cluster_id: r for r in runs if r.cluster_id}
    problems = []
    with ApiClient(stack.info.api_url, stack.admin_key, timeout=60.0) as api:
        listed = [
            c for c in api.list_clusters() if c["name"].startswith(f"chaos-{workload.run_id}-")
        ]
    for cluster in listed:
        if cluster["id"] not in ours:
            problems.append(f"cluster {cluster['name']} ({cluster['id']}) exists twice")
        elif cluster["phase"] != Phase.DELETED:
            problems.append(f"cluster {cluster['name']} is {cluster['phase']} in the API")
    missing = set(ours) - {c["id"] for c in listed}
    problems += [f"accepted create {ours[c].name} missing from the API" for c in missing]
    return problems


def _orphan_releases_of_live_clusters(stack: Stack, runs: list[ClusterRun]) -> list[str]:
    """A sweeper release must come after its cluster was recorded Failed or Deleted."""
    problems = []
    with ApiClient(stack.info.api_url, stack.admin_key, timeout=60.0) as api:
        for run in runs:
            if not run.cluster_id:
                continue
            finished = False
            for event in api.cluster_events(run.cluster_id):
                finished = finished or event.get("phase") in TERMINAL_FOR_SWEEP
                if event.get("reason") == Reason.ORPHAN_RELEASED and not finished:
                    problems.append(f"{run.name}: orphan sweep while live: {event['message']}")
    return problems


def _stragglers(data_dir: Path) -> list[str]:
    """Processes still running that belong to this stack (its data dir in argv or env)."""
    mine = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] == mine:
            continue
        with contextlib.suppress(psutil.Error):
            in_argv = str(data_dir) in " ".join(proc.info["cmdline"] or [])
            if in_argv or proc.environ().get("METALGATE_DATA_DIR") == str(data_dir):
                found.append(f"{proc.info['pid']} {' '.join(proc.info['cmdline'] or [])[:120]}")
    return found
