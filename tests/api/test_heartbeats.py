"""The heartbeat batch: last-seen times of clusters and of each node, written together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.heartbeats import HeartbeatRecorder
from store.agent_outbox import record_change
from store.db import Database
from store.models import AgentNode, Cluster, Project
from store.types import utcnow


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'hb.db'}")
    async with db.sessions.begin() as session:
        session.add(Project(id="prj-h", name="h"))
        await session.flush()
        session.add(
            Cluster(
                id="cl-h",
                project_id="prj-h",
                name="h",
                active_name="h",
                cloud_account_id="acc",
                gateway_id="system",
                spec={},
                phase="Running",
                kubernetes_version="v1.30.4",
            )
        )
        await session.flush()
        await record_change(
            session, cluster_id="cl-h", hostname="n1", fingerprint="f", state={}, now=utcnow()
        )
    yield db
    await db.close()


async def _node(database: Database) -> AgentNode:
    async with database.sessions() as session:
        row = await session.get(AgentNode, ("cl-h", "n1"))
    assert row is not None
    return row


async def test_a_heartbeat_moves_its_nodes_last_seen(database: Database) -> None:
    clock = FakeClock()
    recorder = HeartbeatRecorder(database.sessions, node_every=10.0, clock=clock)
    before = (await _node(database)).last_seen_at
    assert before is not None
    recorder.seen("cl-h", "n1")
    assert await recorder.flush() == 2  # the cluster and the node
    after = (await _node(database)).last_seen_at
    assert after is not None and after > before
    async with database.sessions() as session:
        cluster = await session.get(Cluster, "cl-h")
    assert cluster is not None and cluster.last_heartbeat_at is not None


async def test_a_node_is_written_at_most_once_per_interval(database: Database) -> None:
    clock = FakeClock()
    recorder = HeartbeatRecorder(database.sessions, node_every=10.0, clock=clock)
    recorder.seen("cl-h", "n1")
    await recorder.flush()
    first = (await _node(database)).last_seen_at
    clock.now += 5.0
    recorder.seen("cl-h", "n1")
    await recorder.flush()
    assert (await _node(database)).last_seen_at == first
    clock.now += 5.0
    recorder.seen("cl-h", "n1")
    await recorder.flush()
    last = (await _node(database)).last_seen_at
    assert last is not None and first is not None and last > first
