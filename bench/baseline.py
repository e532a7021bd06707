"""The bare-Temporal limit: N concurrent workflows of no-op activities shaped like a create.

Workers run as separate processes, like the stack's: one hosts the workflows and the
control-plane activities, the other the gateway activities. Alone, the script starts its own
WAL dev server; the lifecycle benchmark calls `run_baseline` on the stack's server instead.

    python -m bench.baseline --workflows 1000 --shape cp,gw,cp,cp,gw,cp,cp,cp
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline_workflow import BaselineInput, BaselineWorkflow, Stage, noop
from bench.common import (
    ProcessSampler,
    cpu_per,
    dev_server,
    percentile,
    python_module,
    run_main,
    spawn,
    stop_process,
    write_result,
)

# The reference shape until a recorded create history gives the real one:
# 8 activities, 6 on the control-plane queue and 2 on the gateway queue.
DEFAULT_SHAPE = "cp,cp,gw,cp,gw,cp,cp,cp"
ROLES = ("cp", "gw")


def parse_shape(text: str) -> list[tuple[str, int]]:
    """`cp,gw*3,cp` -> [("cp", 1), ("gw", 3), ("cp", 1)]; `*k` runs k activities in parallel."""
    stages = []
    for part in text.split(","):
        role, _, count = part.strip().partition("*")
        if role not in ROLES:
            raise ValueError(f"unknown queue role {role!r} in shape; use one of {ROLES}")
        stages.append((role, int(count or 1)))
    return stages


def format_shape(stages: list[tuple[str, int]]) -> str:
    return ",".join(role if count == 1 else f"{role}*{count}" for role, count in stages)


async def _has_pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return len(response.pollers) > 0


async def _wait_polled(client: Client, queues: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    kinds = [TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]
    while True:
        ready = [
            await _has_pollers(client, queue, kind) for queue in queues.values() for kind in kinds
        ]
        if all(ready):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("baseline workers did not start polling within 60 s")
        await asyncio.sleep(0.2)


async def run_baseline(
    address: str,
    workflows: int,
    shape: str = DEFAULT_SHAPE,
    *,
    log_dir: Path,
    server_pid: int | None = None,
    start_concurrency: int = 100,
) -> dict[str, Any]:
    """Run N baseline workflows at once against `address`; the figures as a dict."""
    stages = parse_shape(shape)
    run_id = uuid.uuid4().hex[:8]
    queues = {role: f"bench-{role}-{run_id}" for role in ROLES}
    client = await Client.connect(address)
    common = ["--address", address]
    workers = {
        "baseline-cp-worker": spawn(
            python_module(
                "bench.baseline", "worker", *common, "--queue", queues["cp"], "--host-workflows"
            ),
            log_dir / "baseline-cp-worker.log",
        ),
        "baseline-gw-worker": spawn(
            python_module("bench.baseline", "worker", *common, "--queue", queues["gw"]),
            log_dir / "baseline-gw-worker.log",
        ),
    }
    pids = {name: p.pid for name, p in workers.items()}
    if server_pid is not None:
        pids["temporal"] = server_pid
    try:
        await _wait_polled(client, queues)
        params = BaselineInput([Stage(queues[role], count) for role, count in stages])
        sampler = ProcessSampler(pids)
        gate = asyncio.Semaphore(start_concurrency)
        begin = time.monotonic()
        sampler.start()

        async def one(n: int) -> float:
            async with gate:
                handle = await client.start_workflow(
                    BaselineWorkflow.run,
                    params,
                    id=f"bench-baseline-{run_id}-{n}",
                    task_queue=queues["cp"],
                )
            started = time.monotonic()
            await handle.result()
            return time.monotonic() - started

        latencies = await asyncio.gather(*(one(n) for n in range(workflows)))
        elapsed = time.monotonic() - begin
        processes = await sampler.stop()
    finally:
        for process in workers.values():
            stop_process(process)
    activities = sum(count for _, count in stages) * workflows
    return {
        "workflows": workflows,
        "shape": format_shape(stages),
        "activities_per_workflow": activities // workflows,
        "elapsed_s": round(elapsed, 2),
        "workflows_per_s": round(workflows / elapsed, 2),
        "activities_per_s": round(activities / elapsed, 1),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
        "processes": processes,
        "cpu_per_workflow": cpu_per(processes, workflows),
    }


async def _worker(address: str, queue: str, host_workflows: bool) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[BaselineWorkflow] if host_workflows else [],
        activities=[noop],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


async def _standalone(workflows: int, shape: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="metalgate-baseline-") as tmp:
        data_dir = Path(tmp)
        async with dev_server(data_dir) as server:
            return await run_baseline(
                server.address, workflows, shape, log_dir=data_dir, server_pid=server.process.pid
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker", help="run one baseline worker (used by the runner)")
    worker.add_argument("--address", required=True)
    worker.add_argument("--queue", required=True)
    worker.add_argument("--host-workflows", action="store_true")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--shape", default=DEFAULT_SHAPE)
    args = parser.parse_args()
    if args.command == "worker":
        asyncio.run(_worker(args.address, args.queue, args.host_workflows))
        return
    result = run_main(_standalone(args.workflows, args.shape))
    write_result("baseline", result)
    print(
        f"baseline: {result['workflows']} workflows of {result['activities_per_workflow']} "
        f"activities ({result['shape']}) in {result['elapsed_s']} s: "
        f"{result['workflows_per_s']} workflows/s, {result['activities_per_s']} activities/s"
    )
    for name, stats in result["processes"].items():
        print(f"  {name}: peak RSS {stats['peak_rss_mib']} MiB, CPU {stats['cpu_seconds']} s")
    print(f"  CPU seconds per workflow: {result['cpu_per_workflow']}")


if __name__ == "__main__":
    main()
