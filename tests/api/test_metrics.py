"""The API's metrics endpoint: route templates (not raw paths), codes, and the census."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.metrics import ClusterCensus
from store.db import Database
from tests.api.conftest import Api, ProjectKeys, temporal_address
from tests.api.test_accounts import create_account
from tests.api.test_clusters import create_cluster
from tests.support.api_server import ADMIN_KEY, api_settings, running_api
from tests.support.ports import free_port


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


@pytest.fixture
async def metered_api(
    env: WorkflowEnvironment, codec_keys: list[str], tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    port = free_port()
    settings = api_settings(tmp_path, temporal_address(env), codec_keys, metrics_port=port)
    async with running_api(settings) as url:
        yield url, f"http://127.0.0.1:{port}/metrics"


async def test_requests_are_counted_by_route_template_and_code(
    metered_api: tuple[str, str],
) -> None:
    url, metrics_url = metered_api
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(3):
            assert (await http.get("/v1/clusters/cl-nothere", headers=headers)).status_code == 404
        assert (await http.get("/no/such/route")).status_code == 404
        # The API's own port does not serve them: a scrape needs no key, the API faces out.
        assert (await http.get("/metrics")).status_code == 404
        text = (await http.get(metrics_url)).text
    counted = samples(text, "metalgate_api_requests_total")
    route = (("code", "404"), ("method", "GET"), ("route", "/v1/clusters/{cluster_id}"))
    assert counted[route] == 3
    assert counted[(("code", "404"), ("method", "GET"), ("route", "unmatched"))] >= 1
    assert not any("cl-nothere" in value for key in counted for _, value in key)
    assert samples(text, "metalgate_api_request_duration_seconds_count")
    assert samples(text, "metalgate_agent_heartbeats_total") == {(): 0.0}
    lookups = samples(text, "metalgate_agent_cache_lookups_total")
    assert set(lookups) == {(("result", "hit"),), (("result", "miss"),)}


async def test_the_census_counts_clusters_by_phase_reason_and_gateway(
    api: Api, project: ProjectKeys, system_gateway: Worker
) -> None:
    account: dict[str, Any] = await create_account(api, project.editor)
    created = await create_cluster(api, project.editor, account)
    census = ClusterCensus()
    database = await Database.open(api.settings)
    try:
        await census.count(database.sessions)
    finally:
        await database.close()
    gauges = {
        tuple(sorted(s.labels.items())): s.value
        for family in census.collect()
        for s in family.samples
    }
    mine = [
        (labels, n)
        for labels, n in gauges.items()
        if dict(labels)["gateway"] == account["gateway_id"]
        and dict(labels)["phase"] == created["phase"]
    ]
    assert mine and all(n >= 1 for _, n in mine)
    assert all(dict(labels)["phase"] != "Deleted" for labels in gauges)
