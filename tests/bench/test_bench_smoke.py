"""Every benchmark at a tiny size, so the scripts keep working: figures present and sane.

Speed is not asserted here; `make bench` measures it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import run_all

# Two stacks and two baseline runs start on a shared 2-core machine: minutes, not seconds.
pytestmark = pytest.mark.timeout(600)

TINY = {
    "BENCH_CLUSTERS": "2",
    "BENCH_MANAGED": "20",
    "BENCH_INGEST_CLUSTERS": "10",
    "BENCH_EVENTS": "100",
    "BENCH_RATES": "20",
    "BENCH_STEP_SECONDS": "1",
    "BENCH_MAAS_SECONDS": "1",
    "BENCH_MAAS_CLUSTERS": "2",
    "BENCH_MAAS_DEPLOY_SECONDS": "6",
    "BENCH_REPEATS": "2",
    "BENCH_CLI_RUNS": "2",
    "BENCH_CLI_CLUSTERS": "3",
}


@pytest.fixture
def tiny_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in TINY.items():
        monkeypatch.setitem(os.environ, name, value)
    # Keep the latest real figures in bench/results.
    monkeypatch.setitem(os.environ, "BENCH_RESULTS_DIR", str(tmp_path))


async def test_every_benchmark_reports_sane_figures(tiny_sizes: None) -> None:
    results = await run_all.run_all()

    life = results["lifecycle"]
    assert life["clusters"] == 2
    assert life["clusters_per_s"] > 0
    assert 0 < life["to_running_s"]["p50"] <= life["to_running_s"]["p99"]
    assert 0 < life["to_deleted_s"]["p50"] <= life["to_deleted_s"]["p99"]
    per_cluster = life["histories"]["per_cluster"]
    assert per_cluster["activities"] > 0 and per_cluster["events"] > per_cluster["activities"]
    assert life["histories"]["create_shape"]
    assert life["baseline"]["workflows_per_s"] > 0 and life["ratio"] > 0
    assert life["baseline"]["runs"] == 2
    assert life["ratio_spread"]["min"] <= life["ratio"] <= life["ratio_spread"]["max"]
    assert {"temporal", "api", "control-plane-worker"} <= set(life["processes"])
    assert all(p["peak_rss_mib"] > 0 for p in life["processes"].values())
    # CPU from /proc/<pid>/stat: every process of the stack and of the baseline spent some.
    assert life["cpu_per_cluster"]["all"] > 0 and life["cpu_per_cluster"]["temporal"] > 0
    assert life["baseline"]["cpu_per_workflow"]["all"] > 0 and life["cpu_efficiency"] > 0

    assert results["memory"]["worker_peak_rss_mib"] > 0
    ingest = results["ingest"]
    assert ingest["steps"] and ingest["steps"][0]["heartbeats"] > 0
    assert 0 <= ingest["signalled_share"] <= 1
    history = results["history"]
    assert history["runs"] >= 1 and history["max_run_events"] > 0
    maas = results["maas_calls"]
    assert maas["calls_per_second"] > 0
    assert maas["calls_per_cluster_lifecycle"] > 0
    assert [life["clusters"] for life in maas["lifecycles"]] == [1, 2]
    # Agent events go through the API and its outbox: none lost, fewer signals than events.
    assert history["errors"] == 0 and history["backlog_left"] == 0
    assert 1 <= history["signals"] <= history["events"]

    cli = results["cli_latency"]
    assert cli["runs"] == 2 and cli["clusters"] == 3
    assert 0 < cli["min_s"] <= cli["median_s"] <= cli["max_s"] and cli["cpu_median_s"] > 0
    # The command path imports no server, Temporal or agent code (the figure is `make bench`'s).
    assert cli["heavy_modules"] == [] and cli["modules_loaded"] > 0
    assert cli["import_ms_by_package"]

    table = run_all.table(results)
    assert table.count("\n") == len(run_all.rows(results)) + 1
