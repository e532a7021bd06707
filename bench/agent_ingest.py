"""Agent heartbeat ingest: N simulated clusters heartbeating into the API, rate stepped up.

Clusters are written straight into the store as Running (with their agent tokens) and get a
real management workflow each, so a heartbeat that carries a change really signals. One
agent per cluster runs in the fleet simulator in this process. After a warm-up where every
agent reports once (one signal each), the rate is stepped; for each step: rate held, p99
latency, and the share of heartbeats the API answered `signalled`.

    python -m bench.agent_ingest --clusters 10000 --rates 500,1000,1500,2000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from agent.fleet import Fleet
from agent.timings import AgentTimings
from bench.common import ProcessSampler, run_main, write_result
from bench.memory_history import start_managed
from bench.stack import BenchApi, bench_stack, seed_clusters
from domain.agent_wire import AgentBootstrap
from embedded.stack import Stack

GOAL_RATE = 1000.0
GOAL_P99_MS = 50.0
GOAL_SIGNALLED = 0.01
STEP_SECONDS = 10.0
# Steady state is measured even if some first reports are still queued after this long;
# those agents' first heartbeats then count as signalled, as they would in production.
WARMUP_LIMIT_S = 180.0


def _bootstrap(stack: Stack, cluster_id: str) -> AgentBootstrap:
    return AgentBootstrap(
        api_url=stack.info.api_url,
        cluster_id=cluster_id,
        cluster_name=cluster_id,
        agent_token=f"token-{cluster_id}",
        hostname=f"{cluster_id}-cp",
        system_id=f"{cluster_id}-cp",
        role="control-plane",
        # Seeded as Running: a kubeconfig is accepted only before Running, so none is sent.
        first_control_plane=False,
        kubernetes_version="v1.30.4",
    )


async def measure_ingest(
    stack: Stack, cluster_ids: list[str], rates: list[float], step_seconds: float = STEP_SECONDS
) -> dict[str, Any]:
    """Warm up (one report per agent), then hold each rate for `step_seconds`."""
    steps = []
    # Command polling is another route's load; heartbeats are what this measures.
    async with Fleet(timings=AgentTimings.instant(), poll_commands=False, seed=0) as fleet:
        for cid in cluster_ids:
            fleet.add(_bootstrap(stack, cid))
        begin = time.monotonic()
        # Warm up slowly (each agent every 30 s): the first status reports, one signal each,
        # must not queue behind a full heartbeat load.
        fleet.start(rate=len(cluster_ids) / 30)
        while fleet.stats().statuses_ok < len(cluster_ids):
            if time.monotonic() - begin > WARMUP_LIMIT_S:
                break
            await asyncio.sleep(0.5)
        await fleet.pause()
        warmup = {
            "seconds": round(time.monotonic() - begin, 1),
            "statuses": fleet.stats().statuses_ok,
        }
        for rate in rates:
            stats = await fleet.run_for(step_seconds, rate=rate)
            steps.append(
                {
                    "target_rate": rate,
                    "rate": stats.heartbeat_rate,
                    "p50_ms": stats.latency_p50_ms,
                    "p99_ms": stats.latency_p99_ms,
                    "errors": stats.errors,
                    "heartbeats": stats.heartbeats_ok,
                    "signalled": stats.heartbeats_signalled,
                }
            )
            print(
                f"  ingest step {rate:.0f}/s: held {stats.heartbeat_rate}/s, "
                f"p99 {stats.latency_p99_ms} ms, {stats.heartbeats_signalled}/{stats.heartbeats_ok} "
                "signalled",
                flush=True,
            )
    held = [s for s in steps if s["p99_ms"] < GOAL_P99_MS and not s["errors"]]
    best = max(held, key=lambda s: s["rate"], default=None)
    answers = sum(s["heartbeats"] for s in steps)
    return {
        "clusters": len(cluster_ids),
        "warmup": warmup,
        "steps": steps,
        "max_rate_p99_under_50ms": best["rate"] if best else 0.0,
        "signalled_share": round(sum(s["signalled"] for s in steps) / max(answers, 1), 4),
    }


async def run_agent_ingest(clusters: int, rates: list[float]) -> dict[str, Any]:
    async with bench_stack(machines=3, fleet_heartbeat_interval=None) as bench:
        stack = bench.stack
        api = BenchApi(stack)
        try:
            project = await api._json("POST", "/v1/projects", json={"name": "bench-ingest"})
        finally:
            await api.close()
        ids = [f"bench-hb-{n:06d}" for n in range(clusters)]
        await seed_clusters(stack, str(project["id"]), ids)
        await start_managed(stack, ids)
        sampler = ProcessSampler(bench.process_pids())
        sampler.start()
        result = await measure_ingest(stack, ids, rates)
        result["processes"] = await sampler.stop()
        return result


def print_result(result: dict[str, Any]) -> None:
    print(
        f"agent ingest: {result['clusters']} clusters; highest rate with p99 < {GOAL_P99_MS:.0f} "
        f"ms: {result['max_rate_p99_under_50ms']} heartbeats/s (goal >= {GOAL_RATE:.0f}); "
        f"signalled in steady state: {result['signalled_share']:.2%} (goal < 1%); warm-up "
        f"{result['warmup']['seconds']} s ({result['warmup']['statuses']} status reports)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--rates", default="500,1000,1500,2000")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    result = run_main(run_agent_ingest(args.clusters, rates))
    write_result("agent_ingest", result)
    print_result(result)


if __name__ == "__main__":
    main()
