"""`make bench`: every benchmark, issue 16's table of figures, goals and "met".

Writes bench/results/*.json. Sizes are `bench.common.BenchSettings` (BENCH_CLUSTERS,
BENCH_INGEST_CLUSTERS, BENCH_MANAGED, BENCH_EVENTS, BENCH_RATES, BENCH_STEP_SECONDS,
BENCH_MAAS_SECONDS, BENCH_REPEATS, BENCH_CLI_RUNS, BENCH_CLI_CLUSTERS); the defaults are the
issues' targets (1,000 clusters through the lifecycle, 10,000 heartbeating, `cluster list` of
50 clusters), and CI runs the set tiny.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import psutil

from bench import cli_latency, maas_calls
from bench.agent_ingest import measure_ingest, seed_clusters
from bench.common import BenchSettings, run_main, write_result
from bench.lifecycle import run_lifecycle
from bench.memory_history import measure_history, measure_memory, start_managed
from bench.stack import BenchApi, bench_stack

Row = tuple[str, str, str, bool | None]


def _sizes() -> dict[str, Any]:
    settings = BenchSettings()
    return {**settings.model_dump(), "rates": settings.rate_steps}


async def run_fleet(sizes: dict[str, Any]) -> dict[str, Any]:
    """Ingest, memory and history on one stack: the managed clusters serve all three.

    Ingest runs first, on its share of the clusters, before the rest are managed: every
    cluster it measures heartbeats, so none of them is swept as silent meanwhile.
    """
    results: dict[str, Any] = {}
    async with bench_stack(machines=3, fleet_heartbeat_interval=None) as bench:
        stack = bench.stack
        api = BenchApi(stack)
        try:
            project = await api._json("POST", "/v1/projects", json={"name": "bench-fleet"})
        finally:
            await api.close()
        ids = [f"bench-fl-{n:06d}" for n in range(max(sizes["managed"], sizes["ingest_clusters"]))]
        await seed_clusters(stack, str(project["id"]), ids)
        heartbeating = ids[: sizes["ingest_clusters"]]
        await start_managed(stack, heartbeating)
        results["ingest"] = await _part(
            "agent_ingest",
            measure_ingest(stack, heartbeating, sizes["rates"], sizes["step_seconds"]),
        )
        results["memory"] = await _part(
            "memory", measure_memory(stack, ids[len(heartbeating) :], len(heartbeating))
        )
        results["history"] = await _part(
            "history", measure_history(stack, ids[-1], sizes["events"])
        )
    return results


async def _part(name: str, run: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """One benchmark's figures, or the error that stopped it: the table shows the rest."""
    print(f"{name} ...", flush=True)
    try:
        result = await run
    except Exception as error:
        print(f"{name} failed: {type(error).__name__}: {error}", flush=True)
        result = {"error": f"{type(error).__name__}: {error}"}
    write_result(name, result)
    return result


async def run_all() -> dict[str, Any]:
    sizes = _sizes()
    load_before = os.getloadavg()[0]
    begin = time.monotonic()
    results: dict[str, Any] = {"sizes": sizes}
    # First, on a quiet machine: the CLI's figure is wall-clock time of short processes.
    results["cli_latency"] = await _part(
        "cli_latency", cli_latency.run(runs=sizes["cli_runs"], clusters=sizes["cli_clusters"])
    )
    results["maas_calls"] = await _part("maas_calls", maas_calls.run(seconds=sizes["maas_seconds"]))
    results["lifecycle"] = await _part(
        "lifecycle", run_lifecycle(sizes["clusters"], repeats=sizes["repeats"])
    )
    results.update(await run_fleet(sizes))
    results["seconds"] = round(time.monotonic() - begin, 1)
    results["machine"] = {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        # Other work on the machine moves every wall-clock figure: its load is part of a run.
        "load_1m_start": round(load_before, 1),
        "load_1m_end": round(os.getloadavg()[0], 1),
    }
    results["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    """(figure, measured, goal, met) for every benchmark that finished."""
    found: list[Row] = []
    for part in (_lifecycle_rows, _fleet_rows, _maas_rows, _cli_rows):
        try:
            found += part(results)
        except KeyError:
            pass  # that part failed; `table` lists its error
    return found


def _cpu_detail(per: dict[str, float]) -> str:
    parts = sorted(((v, k) for k, v in per.items() if k != "all"), reverse=True)
    return ", ".join(f"{k} {v:.3f}" for v, k in parts if v >= 0.0005)


def _lifecycle_rows(results: dict[str, Any]) -> list[Row]:
    life, base = results["lifecycle"], results["lifecycle"]["baseline"]
    n, h = life["clusters"], life["histories"]["per_cluster"]
    # The 2-minute goal is for 1,000 clusters: the rate that would meet it at any size.
    goal_rate = 1000 / 120
    rate, cpu = base["rate"], base["cpu"]
    ours = life["cpu_per_cluster"]
    return [
        (f"{n} three-node clusters to Running", f"{life['create_s']} s, {life['clusters_per_s']} clusters/s", f"1,000 in < 120 s (>= {goal_rate:.1f}/s)", n >= 1000 and life["clusters_per_s"] >= goal_rate),
        ("lifecycle / bare-Temporal baseline of the same shape, same run", f"{life['ratio']} (spread {life['ratio_spread']['min']}-{life['ratio_spread']['max']}; baseline {rate['median']} wf/s, {rate['min']}-{rate['max']} over {base['runs']} runs)", ">= 0.8", life["ratio"] >= 0.8),
        ("activities / workflow tasks / events per cluster (create + manage + delete)", f"{h['activities']} / {h['workflow_tasks']} / {h['events']}", "as few as the saga needs", None),
        ("CPU seconds per cluster, all processes", f"{ours['all']:.3f} ({_cpu_detail(ours)}); baseline {cpu['median']:.3f} per workflow ({cpu['min']:.3f}-{cpu['max']:.3f}); efficiency {life['cpu_efficiency']}", ">= 0.8 of the baseline's efficiency", life["cpu_efficiency"] >= 0.8),
        ("time to Running p50 / p95 / p99", "{p50} / {p95} / {p99} s".format(**life["to_running_s"]), "", None),
        ("delete, every machine Ready", f"{life['delete_s']} s ({life['deletes_per_s']}/s)", "", None),
    ]  # fmt: skip


def _fleet_rows(results: dict[str, Any]) -> list[Row]:
    mem, ing, hist = results["memory"], results["ingest"], results["history"]
    n, warm = ing["clusters"], ing["warmup"]
    lowest = ing["steps"][0]
    return [
        (f"heartbeats held with p99 < 50 ms, {n} clusters", f"{ing['max_rate_p99_under_50ms']}/s (at most {max(x['rate'] for x in ing['steps'])}/s; p99 {lowest['p99_ms']} ms at {lowest['target_rate']:.0f}/s)", ">= 1,000/s with 10,000 clusters", n >= 10_000 and ing["max_rate_p99_under_50ms"] >= 1000),
        (f"warm-up: every agent's first report, {n} clusters", f"{warm['seconds']} s ({warm['statuses']} reports)", "< 60 s for 10,000", n >= 10_000 and warm["statuses"] >= n and warm["seconds"] < 60),
        ("heartbeats that became signals (steady state)", f"{ing['signalled_share']:.2%}", "< 1 %", ing["signalled_share"] < 0.01),
        (f"management history after {hist['events']} agent events", f"max {hist['max_run_events']} events in one run, {hist['runs']} runs; {hist['signals']} signals, {hist['errors']} refused", "<= 10,000 per run, 0 refused", hist["max_run_events"] <= 10_000 and hist["errors"] == 0 and hist["backlog_left"] == 0),
        (f"control-plane worker RSS, {mem['managed_clusters']} managed clusters", f"{mem['worker_peak_rss_mib']} MiB", "< 1 GiB", mem["worker_peak_rss_mib"] < 1024),
    ]  # fmt: skip


def _maas_rows(results: dict[str, Any]) -> list[Row]:
    return [
        ("MAAS calls/s through python-libmaas", f"{results['maas_calls']['calls_per_second']}", "> 500", results["maas_calls"]["calls_per_second"] > 500),
    ]  # fmt: skip


def _cli_rows(results: dict[str, Any]) -> list[Row]:
    cli = results["cli_latency"]
    heavy = ", ".join(cli["heavy_modules"]) or "none"
    return [
        (f"`metalgate cluster list`, {cli['clusters']} clusters, end to end", f"median {cli['median_s']} s ({cli['min_s']}-{cli['max_s']} over {cli['runs']} runs; CPU {cli['cpu_median_s']} s; heavy modules imported: {heavy})", f"< {cli['goal_s']} s", cli["median_s"] < cli["goal_s"]),
    ]  # fmt: skip


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | goal | met |", "| --- | --- | --- | --- |"]
    failed = [name for name, part in results.items() if isinstance(part, dict) and "error" in part]
    for name in failed:
        lines.append(f"| {name} | failed: {results[name]['error'][:120]} | | **no** |")
    for figure, measured, goal, met in rows(results):
        mark = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {figure} | {measured} | {goal} | {mark} |")
    return "\n".join(lines)


def main() -> None:
    results = run_main(run_all())
    write_result("run_all", results)
    print()
    print(table(results))
    m = results["machine"]
    print(
        f"\n{m['cores']} cores, {m['memory_gib']} GiB, {m['platform']}; {results['date']}; "
        f"the set took {results['seconds']} s; load average {m['load_1m_start']} at the start, "
        f"{m['load_1m_end']} at the end"
    )
    for name, stats in results["lifecycle"].get("processes", {}).items():
        print(
            f"  lifecycle {name}: peak RSS {stats['peak_rss_mib']} MiB, CPU {stats['cpu_seconds']} s"
        )


if __name__ == "__main__":
    main()
