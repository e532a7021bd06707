"""The outbox on both store back ends: claims never overlap, changes are never lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from store.agent_outbox import RetryLater, claim, record_change, settle
from store.db import Database
from store.models import AgentNode, AgentOutboxRow, Cluster, Project
from store.types import utcnow


async def _clusters(database: Database, count: int) -> list[str]:
    ids = [f"cls-{i:04d}" for i in range(count)]
    async with database.sessions.begin() as session:
        session.add(Project(id="prj-o", name="o"))
        await session.flush()
        for cluster_id in ids:
            session.add(
                Cluster(
                    id=cluster_id,
                    project_id="prj-o",
                    name=cluster_id,
                    active_name=cluster_id,
                    cloud_account_id="acc-1",
                    gateway_id="system",
                    spec={},
                    phase="Running",
                    kubernetes_version="v1.30.4",
                )
            )
    return ids


async def _change(database: Database, cluster_id: str, hostname: str, fp: str) -> None:
    async with database.sessions.begin() as session:
        await record_change(
            session,
            cluster_id=cluster_id,
            hostname=hostname,
            fingerprint=fp,
            state={"message": fp},
            now=utcnow(),
        )


async def _outbox(database: Database) -> list[AgentOutboxRow]:
    async with database.sessions() as session:
        return list((await session.scalars(select(AgentOutboxRow))).all())


async def test_concurrent_claimers_never_share_a_cluster(database: Database) -> None:
    ids = await _clusters(database, 60)
    for cluster_id in ids:
        await _change(database, cluster_id, "node-1", "a")
    batches = await asyncio.gather(
        *(claim(database.sessions, limit=25, lease_seconds=30) for _ in range(4))
    )
    claimed = [r.cluster_id for batch in batches for r in batch]
    assert sorted(claimed) == ids  # 4 x 25 >= 60: every row once, none twice
    assert await claim(database.sessions, limit=100, lease_seconds=30) == []
    # A lease that ran out (its sender died) is claimed again.
    later = utcnow() + timedelta(seconds=31)
    again = await claim(database.sessions, limit=100, lease_seconds=30, now=later)
    assert sorted(r.cluster_id for r in again) == ids


async def test_a_change_during_the_signal_is_sent_next_with_the_latest_state(
    database: Database,
) -> None:
    [cluster_id] = await _clusters(database, 1)
    await _change(database, cluster_id, "node-1", "a")
    await _change(database, cluster_id, "node-2", "b")
    [first] = await claim(database.sessions, limit=10, lease_seconds=30)
    assert [n.hostname for n in first.changed] == ["node-1", "node-2"]
    await _change(database, cluster_id, "node-1", "c")  # while the signal is in flight
    await settle(database.sessions, delivered=[first], coalesce_seconds=0)
    [second] = await claim(database.sessions, limit=10, lease_seconds=30)
    assert [(n.hostname, n.fingerprint) for n in second.changed] == [("node-1", "c")]
    assert [n.hostname for n in second.nodes] == ["node-1", "node-2"]
    await settle(database.sessions, delivered=[second])
    assert await _outbox(database) == []
    async with database.sessions() as session:
        pending = (await session.scalars(select(AgentNode.pending))).all()
    assert list(pending) == [False, False]


async def test_a_refused_signal_waits_and_keeps_the_change(database: Database) -> None:
    [cluster_id] = await _clusters(database, 1)
    await _change(database, cluster_id, "node-1", "a")
    [report] = await claim(database.sessions, limit=10, lease_seconds=30)
    await settle(
        database.sessions, retry=[RetryLater(report=report, delay_seconds=5, error="down")]
    )
    [row] = await _outbox(database)
    assert (row.attempts, row.last_error, row.lease_owner) == (1, "down", None)
    assert await claim(database.sessions, limit=10, lease_seconds=30) == []
    later = utcnow() + timedelta(seconds=6)
    [again] = await claim(database.sessions, limit=10, lease_seconds=30, now=later)
    assert [n.fingerprint for n in again.changed] == ["a"]
    assert again.attempts == 1


async def test_coalescing_delays_only_the_next_signal_of_that_cluster(database: Database) -> None:
    busy, quiet = await _clusters(database, 2)
    await _change(database, busy, "node-1", "a")
    [report] = await claim(database.sessions, limit=10, lease_seconds=30)
    await _change(database, busy, "node-1", "b")
    await settle(database.sessions, delivered=[report], coalesce_seconds=60)
    await _change(database, quiet, "node-1", "a")
    due = await claim(database.sessions, limit=10, lease_seconds=30)
    assert [r.cluster_id for r in due] == [quiet]


async def test_deleting_a_cluster_drops_its_outbox_row(database: Database) -> None:
    [cluster_id] = await _clusters(database, 1)
    await _change(database, cluster_id, "node-1", "a")
    async with database.sessions.begin() as session:
        await session.delete(await session.get(Cluster, cluster_id))
    assert await _outbox(database) == []
