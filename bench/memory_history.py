"""Control-plane worker memory with many managed clusters, and management history length.

Management workflows are started directly with `ManageInput` on the stack's control-plane
worker (creating 10,000 real clusters would measure the lifecycle again). Then one cluster's
agent posts a storm of changes through the API (the outbox coalesces them into signals), and
every run of its management workflow is measured.

    python -m bench.memory_history --clusters 10000 --events 100000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.common import ProcessSampler, run_main, write_result
from bench.stack import BenchApi, bench_stack, outbox_backlog, seed_clusters
from domain.cluster import ClusterSpec, NodePool
from domain.lifecycle import ClusterRef, GatewayRef
from domain.maas import MaasAccount, Machine
from domain.naming import CONTROL_PLANE_QUEUE, MANAGE_WORKFLOW, manage_workflow_id
from embedded.stack import Stack
from workflows.contracts import ManageInput, ManageState

START_CONCURRENCY = 100
# Agent events arrive from many API requests at once; a few in flight is realistic.
AGENT_CONCURRENCY = 8
GOAL_RSS_MIB = 1024
GOAL_RUN_EVENTS = 10_000


def _state(cluster_id: str, gateway_id: str, maas: MaasAccount) -> ManageState:
    spec = ClusterSpec(name="bench", worker_pools=[NodePool(name="workers", count=2)])
    machines = [
        Machine(system_id=f"{cluster_id}-{k}", hostname=f"{cluster_id}-{k}", pool=pool)
        for k, pool in enumerate(["control-plane", "workers", "workers"])
    ]
    return ManageState(
        cluster=ClusterRef(
            cluster_id=cluster_id,
            project_id="bench",
            spec=spec,
            gateway=GatewayRef(id=gateway_id, name="bench"),
            account=maas,
        ),
        agent_token="bench-token",
        machines=machines,
        kubernetes_version=spec.kubernetes_version,
    )


async def gather_bounded(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
    """Every call, `concurrency` at a time; the first error cancels the rest."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await call()

    async with asyncio.TaskGroup() as tasks:
        for call in calls:
            tasks.create_task(one(call))


async def wait_idle(pid: int, quiet_cpu_s: float = 0.2, window_s: float = 2.0) -> None:
    """Until the process spends under `quiet_cpu_s` of CPU in `window_s`: its backlog is done."""
    proc = psutil.Process(pid)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        before = sum(proc.cpu_times()[:2])
        await asyncio.sleep(window_s)
        if sum(proc.cpu_times()[:2]) - before < quiet_cpu_s:
            return


async def start_managed(stack: Stack, cluster_ids: list[str]) -> float:
    """One management workflow per cluster on the stack's worker; seconds to start them all."""
    maas = MaasAccount(url=stack.info.maas_url, api_key=stack.maas_key)
    gateway_id = stack.info.pcg_gateway_id or "system"

    def starter(cluster_id: str) -> Callable[[], Awaitable[Any]]:
        return lambda: stack.client.start_workflow(
            MANAGE_WORKFLOW,
            ManageInput(state=_state(cluster_id, gateway_id, maas)),
            id=manage_workflow_id(cluster_id),
            task_queue=CONTROL_PLANE_QUEUE,
        )

    begin = time.monotonic()
    await gather_bounded([starter(cid) for cid in cluster_ids], START_CONCURRENCY)
    return time.monotonic() - begin


def _worker_pid(stack: Stack) -> int:
    return stack.supervisor.children["control-plane-worker"].process.pid


async def measure_memory(
    stack: Stack, cluster_ids: list[str], already_managed: int = 0
) -> dict[str, Any]:
    """Control-plane worker RSS while it takes on one management workflow per cluster."""
    pid = _worker_pid(stack)
    sampler = ProcessSampler({"control-plane-worker": pid})
    rss_before = psutil.Process(pid).memory_info().rss / 2**20
    sampler.start()
    start_s = await start_managed(stack, cluster_ids)
    await wait_idle(pid)
    worker = (await sampler.stop())["control-plane-worker"]
    return {
        "managed_clusters": already_managed + len(cluster_ids),
        "start_s": round(start_s, 1),
        "worker_rss_before_mib": round(rss_before, 1),
        "worker_rss_after_mib": round(psutil.Process(pid).memory_info().rss / 2**20, 1),
        "worker_peak_rss_mib": worker["peak_rss_mib"],
        "worker_cpu_s": worker["cpu_seconds"],
    }


async def _runs(client: Client, workflow_id: str) -> list[int]:
    """History length of every run of `workflow_id`, oldest first.

    Visibility records a run's length only when it closes, so each run is described.
    """
    runs = []
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        info = (await handle.describe()).raw_description.workflow_execution_info
        runs.append((execution.start_time, info.history_length))
    return [length for _, length in sorted(runs)]


async def _signals(client: Client, workflow_id: str) -> int:
    """Agent-report signals over every run of `workflow_id`."""
    count = 0
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                count += 1
    return count


async def measure_history(stack: Stack, cluster_id: str, events: int) -> dict[str, Any]:
    """A storm of agent events for one managed cluster (seeded with `seed_clusters`), posted
    to the API as its agent would, each one a change; the length of every management run."""
    headers = {"Authorization": f"Bearer token-{cluster_id}"}
    host = f"{cluster_id}-cp"
    errors = 0
    limits = httpx.Limits(max_connections=AGENT_CONCURRENCY)
    async with httpx.AsyncClient(base_url=stack.info.api_url, timeout=60, limits=limits) as http:

        async def send(k: int) -> None:
            nonlocal errors
            body = {
                "node": {"hostname": host, "system_id": host, "ready": bool(k % 2)},
                "control_plane_ready": True,
                "message": f"event {k}",
            }
            answer = await http.post("/v1/agent/heartbeat", json=body, headers=headers)
            errors += answer.status_code != 200

        def sender(k: int) -> Callable[[], Awaitable[None]]:
            return lambda: send(k)

        begin = time.monotonic()
        await gather_bounded([sender(k) for k in range(events)], AGENT_CONCURRENCY)
        post_s = time.monotonic() - begin
    deadline = time.monotonic() + 120
    while await outbox_backlog(stack) and time.monotonic() < deadline:  # noqa: ASYNC110 (polls the store)
        await asyncio.sleep(0.5)
    await wait_idle(_worker_pid(stack))
    workflow_id = manage_workflow_id(cluster_id)
    runs = await _runs(stack.client, workflow_id)
    signals = await _signals(stack.client, workflow_id)
    return {
        "events": events,
        "events_per_s": round(events / post_s, 1),
        "errors": errors,
        "signals": signals,
        "backlog_left": await outbox_backlog(stack),
        "runs": len(runs),
        "max_run_events": max(runs, default=0),
        "last_runs_events": runs[-5:],
    }


async def run_memory_history(clusters: int, events: int) -> dict[str, Any]:
    async with bench_stack(machines=3, fleet_heartbeat_interval=None) as bench:
        ids = [f"bench-mem-{n:06d}" for n in range(clusters)]
        api = BenchApi(bench.stack)
        try:
            project = await api._json("POST", "/v1/projects", json={"name": "bench-history"})
        finally:
            await api.close()
        await seed_clusters(bench.stack, str(project["id"]), ids[:1])
        memory = await measure_memory(bench.stack, ids)
        history = await measure_history(bench.stack, ids[0], events)
    return {**memory, **history}


def print_result(result: dict[str, Any]) -> None:
    print(
        f"memory: control-plane worker with {result['managed_clusters']} managed clusters: "
        f"peak RSS {result['worker_peak_rss_mib']} MiB (goal < {GOAL_RSS_MIB}), "
        f"{result['worker_rss_before_mib']} MiB before, {result['worker_rss_after_mib']} after; "
        f"started in {result['start_s']} s"
    )
    print(
        f"history: {result['events']} agent events for one cluster at "
        f"{result['events_per_s']}/s through the API: {result['signals']} signals, "
        f"{result['runs']} runs, longest {result['max_run_events']} events "
        f"(goal <= {GOAL_RUN_EVENTS})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    result = run_main(run_memory_history(args.clusters, args.events))
    write_result("memory_history", result)
    print_result(result)


if __name__ == "__main__":
    main()
