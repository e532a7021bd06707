"""The metrics of a running stack: every process serves them, and the dashboard only queries
metrics that exist. The dashboard is parsed, not listed again here, so a panel added or
renamed is checked too."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.support.ports import free_port, free_port_block

pytestmark = pytest.mark.timeout(480)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "metalgate.json"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
EXAMPLE_SPEC = ROOT / "examples" / "cluster.yaml"

# PromQL words that are not metric names.
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def dashboard_exprs(dashboard: dict[str, object]) -> list[str]:
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, ranges left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_the_expression_parser_finds_metric_names() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(metalgate_api_request_duration_"
        'seconds_bucket{route!="unmatched"}[5m]))) / on (job) up'
    )
    assert metric_names(expr) == {"metalgate_api_request_duration_seconds_bucket", "up"}


async def scrape(url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(url)
    response.raise_for_status()
    return {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=StackPorts(
            temporal=free_port(),
            ui=free_port(),
            api=free_port(),
            maas=free_port(),
            agent_runtime=free_port(),
            metrics=free_port_block(4),
        ),
        maas_machines=4,
        deploy_seconds=0.5,
        release_seconds=0.5,
    )
    running = await start_stack(config)
    try:
        yield running
    finally:
        await running.stop()


async def run_a_cluster(stack: Stack) -> None:
    """Create a cluster through the PCG and wait until it runs: MAAS calls, machines,
    heartbeats and signals all happen on the way."""
    async with httpx.AsyncClient(
        base_url=stack.info.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30.0,
    ) as http:
        account = await http.post(
            "/v1/cloud-accounts",
            json={
                "name": "emulator",
                "maas_url": stack.info.maas_url,
                "maas_api_key": stack.maas_key,
                "gateway_id": stack.info.pcg_gateway_id,
            },
        )
        account.raise_for_status()
        spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
        spec["worker_pools"][0]["count"] = 1
        created = await http.post(
            "/v1/clusters", json={**spec, "cloud_account_id": account.json()["id"]}
        )
        created.raise_for_status()
        url = f"/v1/clusters/{created.json()['id']}"
        for _ in range(150):
            if (await http.get(url)).json()["phase"] == "Running":
                return
            await asyncio.sleep(1.0)
    raise AssertionError("the cluster did not reach Running")


async def test_every_process_serves_what_the_dashboard_queries(stack: Stack) -> None:
    assert set(stack.info.metrics) == {"api", "control-plane-worker", "system-gateway", "pcg-1"}
    await run_a_cluster(stack)
    served: dict[str, set[str]] = {}
    # The cluster census counts every few seconds; heartbeats come every few seconds too.
    for _ in range(30):
        served = {name: await scrape(url) for name, url in stack.info.metrics.items()}
        if (
            "metalgate_clusters" in served["api"]
            and "metalgate_maas_calls_total" in served["pcg-1"]
        ):
            break
        await asyncio.sleep(1.0)
    assert "metalgate_api_requests_total" in served["api"]
    assert "metalgate_agent_heartbeats_total" in served["api"]
    for worker in ("control-plane-worker", "system-gateway", "pcg-1"):
        assert "temporal_worker_task_slots_available" in served[worker], worker
    assert "metalgate_maas_call_duration_seconds_bucket" in served["pcg-1"]
    assert "metalgate_machines_acquired_total" in served["pcg-1"]

    everything = set().union(*served.values())
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    assert len(exprs) >= 10
    missing = {
        expr: sorted(metric_names(expr) - everything)
        for expr in exprs
        if metric_names(expr) - everything
    }
    assert not missing, f"dashboard queries name metrics no process serves: {missing}"


def test_prometheus_scrapes_every_metrics_service_of_the_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    scraped = {
        (name, sd["port"])
        for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    serving = {
        (name, int(service["environment"]["METALGATE_METRICS_PORT"]))
        for name, service in compose["services"].items()
        if "METALGATE_METRICS_PORT" in (service.get("environment") or {})
    }
    assert {"api", "control-plane-worker", "pcg"} <= {name for name, _ in serving}
    assert serving == scraped
    prometheus_networks = set(compose["services"]["prometheus"]["networks"])
    for name, _ in serving:
        assert prometheus_networks & set(compose["services"][name]["networks"]), name
    grafana = compose["services"]["grafana"]
    assert any("deploy/grafana/dashboards" in volume for volume in grafana["volumes"])
