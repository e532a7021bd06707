"""The agent token cache: an unchanged heartbeat of a cached token opens no store session."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, update
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.agent_cache import AgentCache, AgentEntry
from domain.naming import CONTROL_PLANE_QUEUE, QUERY_STATE, manage_workflow_id
from store.db import Database
from store.models import Cluster
from store.secrets import hash_token
from store.types import utcnow
from tests.api.conftest import Api, new_project, temporal_address
from tests.api.standins import ManageStandIn
from tests.support.api_server import api_settings, running_api
from tests.support.temporal import assert_eventually

TTL = 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = AgentCache(ttl=5.0, clock=clock)
    cache.put("h", AgentEntry("c1", "Running", False, {"n": "f"}), clock())
    clock.now += 4.9
    assert cache.get("h") is not None
    clock.now += 0.2
    assert cache.get("h") is None
    assert len(cache) == 0


def test_size_is_bounded_least_recently_used_first() -> None:
    clock = FakeClock()
    cache = AgentCache(ttl=5.0, max_entries=2, clock=clock)
    for name in ("a", "b"):
        cache.put(name, AgentEntry(name, "Running", False), clock())
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", AgentEntry("c", "Running", False), clock())
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_remember_updates_fingerprint_and_clears_silent() -> None:
    clock = FakeClock()
    cache = AgentCache(clock=clock)
    cache.put("h", AgentEntry("c1", "Running", True, {}), clock())
    cache.remember("h", "node-1", "fp")
    entry = cache.get("h")
    assert entry is not None and entry.silent is False and entry.fingerprints == {"node-1": "fp"}
    cache.remember("unknown", "node-1", "fp")  # not cached: nothing to update
    assert cache.get("unknown") is None


@pytest.fixture(scope="module")
async def cache_api(
    env: WorkflowEnvironment,
    codec_keys: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    control_plane_standins: Worker,
) -> AsyncIterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("agent-cache")
    settings = api_settings(data_dir, temporal_address(env), codec_keys)
    async with running_api(settings, heartbeat_flush_seconds=0.2, agent_cache_seconds=TTL) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Api(url, settings, http)


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement this process runs, but the batch flush, the cache refresh and the
    outbox sender's look for due rows."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(
            ("UPDATE clusters SET last_heartbeat_at", "UPDATE agent_nodes SET last_seen_at")
        ):
            return
        if " IN (" in statement:
            return
        if statement.startswith("SELECT agent_outbox.cluster_id"):
            return
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def running_cluster(api: Api, env: WorkflowEnvironment) -> tuple[str, dict[str, str]]:
    """A Running cluster written straight into the store, with a management stand-in."""
    project = await new_project(api)
    cluster_id = f"c-{uuid.uuid4().hex[:10]}"
    token = f"token-{cluster_id}"
    database = await Database.open(api.settings)
    try:
        async with database.sessions.begin() as session:
            await session.execute(
                insert(Cluster),
                [
                    {
                        "id": cluster_id,
                        "project_id": project.project_id,
                        "name": cluster_id,
                        "active_name": cluster_id,
                        "cloud_account_id": "none",
                        "gateway_id": "system",
                        "spec": {"name": cluster_id, "worker_pools": []},
                        "phase": "Running",
                        "message": "",
                        "conditions": [],
                        "machines": [
                            {"system_id": "s1", "hostname": "node-1", "pool": "control-plane"}
                        ],
                        "kubernetes_version": "v1.30.4",
                        "agent_token_hash": hash_token(token),
                        "last_heartbeat_at": utcnow(),
                        "silent": False,
                    }
                ],
            )
    finally:
        await database.close()
    await env.client.start_workflow(
        ManageStandIn.run,
        cluster_id,
        id=manage_workflow_id(cluster_id),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    return cluster_id, {"Authorization": f"Bearer {token}"}


def beat(ready: bool = False) -> dict[str, Any]:
    return {
        "node": {"hostname": "node-1", "role": "control-plane", "ready": ready},
        "control_plane_ready": ready,
    }


async def post(api: Api, agent: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return await api.http.post("/v1/agent/heartbeat", json=body, headers=agent)


async def reports(env: WorkflowEnvironment, cluster_id: str, count: int) -> None:
    """Wait until the management stand-in got `count` reports from the outbox sender."""

    async def got() -> None:
        handle = env.client.get_workflow_handle(manage_workflow_id(cluster_id))
        assert (await handle.query(QUERY_STATE))["reports"] == count

    await assert_eventually(got)


async def test_unchanged_heartbeat_of_a_cached_token_queries_nothing(
    cache_api: Api, env: WorkflowEnvironment, statements: list[str]
) -> None:
    cluster_id, agent = await running_cluster(cache_api, env)
    assert (await post(cache_api, agent, beat())).json() == {"ok": True, "signalled": True}
    await reports(env, cluster_id, 1)
    statements.clear()
    for _ in range(20):
        answer = await post(cache_api, agent, beat())
        assert answer.json() == {"ok": True, "signalled": False}
    assert statements == []
    # A change still takes the slow path and is signalled.
    assert (await post(cache_api, agent, beat(ready=True))).json()["signalled"] is True
    assert statements
    await reports(env, cluster_id, 2)
    statements.clear()
    assert (await post(cache_api, agent, beat(ready=True))).json()["signalled"] is False
    assert statements == []
    # Back to the first state: a change again.
    assert (await post(cache_api, agent, beat())).json()["signalled"] is True
    await reports(env, cluster_id, 3)


async def test_revoked_token_is_refused_within_the_ttl(
    cache_api: Api, env: WorkflowEnvironment
) -> None:
    cluster_id, agent = await running_cluster(cache_api, env)
    assert (await post(cache_api, agent, beat())).status_code == 200
    database = await Database.open(cache_api.settings)
    try:
        async with database.sessions.begin() as session:
            await session.execute(
                update(Cluster).where(Cluster.id == cluster_id).values(agent_token_hash=None)
            )
    finally:
        await database.close()
    revoked_at = time.monotonic()

    async def refused() -> None:
        answer = await post(cache_api, agent, beat())
        assert answer.status_code == 401, answer.text
        assert "revoked" in answer.json()["detail"]

    await assert_eventually(refused, within=TTL + 3.0)
    assert time.monotonic() - revoked_at < TTL + 1.0


async def test_silent_cluster_heartbeating_signals_within_the_ttl(
    cache_api: Api, env: WorkflowEnvironment
) -> None:
    cluster_id, agent = await running_cluster(cache_api, env)
    assert (await post(cache_api, agent, beat())).json()["signalled"] is True
    database = await Database.open(cache_api.settings)
    try:
        async with database.sessions.begin() as session:
            await session.execute(
                update(Cluster).where(Cluster.id == cluster_id).values(silent=True)
            )
    finally:
        await database.close()

    async def signalled() -> None:
        assert (await post(cache_api, agent, beat())).json()["signalled"] is True

    await assert_eventually(signalled, within=TTL + 3.0, interval=0.2)
    await reports(env, cluster_id, 2)
    assert (await post(cache_api, agent, beat())).json()["signalled"] is False
