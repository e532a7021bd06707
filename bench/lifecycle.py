"""Fleet-scale lifecycle: N 3-node clusters created at once through the API, then deleted.

The whole stack runs as `metalgate up` runs it (free ports, temporary data dir), MAAS deploys
and releases instantly, so what is measured is metalgate and Temporal. Afterwards the bare
baseline runs on the same server with the create's real activity shape, for the ratio.

    python -m bench.lifecycle --clusters 1000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio.client import Client

from bench.baseline import DEFAULT_SHAPE, run_baseline
from bench.common import ProcessSampler, cpu_per, percentile, run_main, spread, write_result
from bench.histories import history_counts, mean_counts, typical_shape
from bench.stack import BenchApi, bench_stack, machine_statuses
from domain.naming import create_workflow_id, delete_workflow_id, manage_workflow_id
from embedded.stack import Stack

HISTORY_SAMPLE = 20
POLL_SECONDS = 0.5


async def _wait_until(
    what: str,
    check: Callable[[], Awaitable[tuple[bool, str]]],
    limit_s: float,
    poll: float = POLL_SECONDS,
) -> float:
    """Seconds until `check` holds, with progress every 10 s; bounded, naming what never came."""
    begin = last_print = time.monotonic()
    while True:
        done, progress = await check()
        now = time.monotonic()
        if done:
            return now - begin
        if now - begin > limit_s:
            raise TimeoutError(f"{what} not reached within {limit_s:.0f} s ({progress})")
        if now - last_print > 10:
            print(f"  waiting {now - begin:.0f} s for {what}: {progress}", flush=True)
            last_print = now
        await asyncio.sleep(poll)


async def _close_times(client: Client, workflow_type: str) -> dict[str, datetime]:
    """Close time of every closed workflow of a type, keyed by workflow id."""
    closed: dict[str, datetime] = {}
    query = f"WorkflowType = '{workflow_type}' AND ExecutionStatus != 'Running'"
    async for execution in client.list_workflows(query):
        if execution.close_time is not None:
            closed[execution.id] = execution.close_time
    return closed


def _latencies(
    submitted: dict[str, float], closed: dict[str, datetime], workflow_id: Callable[[str], str]
) -> list[float]:
    return [
        closed[workflow_id(cid)].timestamp() - at
        for cid, at in submitted.items()
        if workflow_id(cid) in closed
    ]


async def _submit_all(
    ids: list[str], call: Callable[[str], Awaitable[Any]], concurrency: int
) -> dict[str, float]:
    """Run `call` for every id at most `concurrency` at a time; wall time of each submit."""
    gate = asyncio.Semaphore(concurrency)
    submitted: dict[str, float] = {}

    async def one(item: str) -> None:
        async with gate:
            submitted[item] = time.time()
            await call(item)

    await asyncio.gather(*(one(item) for item in ids))
    return submitted


async def _history_figures(stack: Stack, cluster_ids: list[str]) -> dict[str, Any]:
    sample = random.Random(0).sample(cluster_ids, min(HISTORY_SAMPLE, len(cluster_ids)))
    figures: dict[str, Any] = {"sample": len(sample)}
    creates = []
    for kind, workflow_id in (
        ("create", create_workflow_id),
        ("manage", manage_workflow_id),
        ("delete", delete_workflow_id),
    ):
        counts = [
            c for cid in sample if (c := await history_counts(stack.client, workflow_id(cid)))
        ]
        figures[kind] = mean_counts(counts)
        if kind == "create":
            creates = counts
    figures["per_cluster"] = {
        key: round(sum(figures[kind][key] for kind in ("create", "manage", "delete")), 1)
        for key in ("events", "activities", "workflow_tasks")
    }
    figures["create_shape"] = typical_shape(creates)
    return figures


async def run_lifecycle(
    clusters: int, *, baseline: bool = True, repeats: int = 1, submit_concurrency: int = 50
) -> dict[str, Any]:
    """The lifecycle figures; then the bare baseline `repeats` times on the same server (it is
    cheap beside the lifecycle, and the noisiest figure on a shared machine)."""
    timeout = max(300.0, clusters * 1.0)
    async with bench_stack(machines=3 * clusters) as bench:
        stack = bench.stack
        api = BenchApi(stack, max_connections=submit_concurrency)
        try:
            account_id = await api.create_account()
            sampler = ProcessSampler(bench.process_pids())
            sampler.start()
            names = [f"bench-{n:05d}" for n in range(clusters)]
            ids: dict[str, str] = {}

            async def create(name: str) -> None:
                ids[name] = await api.create_cluster(name, account_id)

            begin = time.monotonic()
            created_at = await _submit_all(names, create, submit_concurrency)
            submit_s = time.monotonic() - begin

            async def all_running() -> tuple[bool, str]:
                if failed := await api.count("Failed"):
                    raise RuntimeError(f"{failed} clusters Failed")
                running = await api.count("Running")
                return running >= clusters, f"{running} Running"

            await _wait_until(f"{clusters} clusters Running", all_running, timeout)
            create_s = time.monotonic() - begin
            submitted = {ids[name]: at for name, at in created_at.items()}
            cluster_ids = list(submitted)

            begin = time.monotonic()
            deleted_at = await _submit_all(cluster_ids, api.delete_cluster, submit_concurrency)

            async def all_ready() -> tuple[bool, str]:
                statuses = await machine_statuses(stack)
                return statuses["Ready"] >= 3 * clusters, str(dict(statuses))

            await _wait_until("every machine Ready", all_ready, timeout, poll=2.0)

            # Machines are Ready before the delete sagas record their end, and visibility
            # lists a closed workflow a moment later still: wait for every one.
            async def all_deletes_closed() -> tuple[bool, str]:
                closed = await _close_times(stack.client, "ClusterDelete")
                done = sum(delete_workflow_id(c) in closed for c in cluster_ids)
                return done >= clusters, f"{done} deletes closed"

            await _wait_until("every delete closed", all_deletes_closed, timeout, poll=1.0)
            delete_s = time.monotonic() - begin
            processes = await sampler.stop()
            to_running = _latencies(
                submitted, await _close_times(stack.client, "ClusterCreate"), create_workflow_id
            )
            to_deleted = _latencies(
                deleted_at, await _close_times(stack.client, "ClusterDelete"), delete_workflow_id
            )
            histories = await _history_figures(stack, cluster_ids)
        finally:
            await api.close()
        result: dict[str, Any] = {
            "clusters": clusters,
            "nodes_per_cluster": 3,
            "submit_s": round(submit_s, 2),
            "create_s": round(create_s, 2),
            "clusters_per_s": round(clusters / create_s, 2),
            "delete_s": round(delete_s, 2),
            "deletes_per_s": round(clusters / delete_s, 2),
            "to_running_s": {f"p{q}": round(percentile(to_running, q), 2) for q in (50, 95, 99)},
            "to_deleted_s": {f"p{q}": round(percentile(to_deleted, q), 2) for q in (50, 95, 99)},
            "histories": histories,
            "processes": processes,
            "cpu_per_cluster": cpu_per(processes, clusters),
        }
        if baseline:
            temporal = stack.supervisor.children["temporal"].process.pid
            runs = [
                await run_baseline(
                    stack.info.temporal_address,
                    clusters,
                    histories["create_shape"] or DEFAULT_SHAPE,
                    log_dir=stack.config.data_dir / "logs",
                    server_pid=temporal,
                )
                for _ in range(max(repeats, 1))
            ]
            rates = spread([r["workflows_per_s"] for r in runs])
            cpus = spread([r["cpu_per_workflow"]["all"] for r in runs])
            result["baseline"] = {**runs[0], "runs": len(runs), "rate": rates, "cpu": cpus}
            result["ratio"] = round(result["clusters_per_s"] / rates["median"], 2)
            result["ratio_spread"] = {
                "min": round(result["clusters_per_s"] / rates["max"], 2),
                "max": round(result["clusters_per_s"] / rates["min"], 2),
            }
            # The baseline's CPU per workflow over ours per cluster: 1.0 is bare Temporal's.
            result["cpu_efficiency"] = round(
                cpus["median"] / max(result["cpu_per_cluster"]["all"], 1e-9), 2
            )
        return result


def print_result(result: dict[str, Any]) -> None:
    n = result["clusters"]
    print(
        f"lifecycle: {n} clusters Running in {result['create_s']} s "
        f"({result['clusters_per_s']} clusters/s; submitting took {result['submit_s']} s), "
        f"deleted with every machine Ready in {result['delete_s']} s"
    )
    for label, key in (("to Running", "to_running_s"), ("to Deleted", "to_deleted_s")):
        q = result[key]
        print(f"  time {label}: p50 {q['p50']} s, p95 {q['p95']} s, p99 {q['p99']} s")
    h = result["histories"]
    print(
        f"  per cluster (sample of {h['sample']}): {h['per_cluster']['activities']} activities, "
        f"{h['per_cluster']['workflow_tasks']} workflow tasks, {h['per_cluster']['events']} "
        f"history events; create shape {h['create_shape']}"
    )
    for kind in ("create", "manage", "delete"):
        print(f"    {kind}: {h[kind]}")
    for name, stats in result["processes"].items():
        print(f"  {name}: peak RSS {stats['peak_rss_mib']} MiB, CPU {stats['cpu_seconds']} s")
    print(f"  CPU seconds per cluster: {result['cpu_per_cluster']}")
    if "baseline" in result:
        b = result["baseline"]
        print(
            f"  baseline on the same server ({b['runs']} runs, shape {b['shape']}): "
            f"{b['rate']} workflows/s, CPU per workflow {b['cpu']} s; ratio {result['ratio']} "
            f"({result['ratio_spread']}), CPU efficiency {result['cpu_efficiency']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the baseline")
    args = parser.parse_args()
    result = run_main(
        run_lifecycle(args.clusters, baseline=not args.no_baseline, repeats=args.repeats)
    )
    write_result("lifecycle", result)
    print_result(result)


if __name__ == "__main__":
    main()
