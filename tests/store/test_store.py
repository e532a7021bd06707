from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from domain.phases import Phase
from runtime.settings import Settings
from store.db import Database, upsert
from store.migrations import STEPS, migrate
from store.models import (
    Base,
    Cluster,
    ClusterEvent,
    Gateway,
    GatewayReplica,
    Project,
    SchemaVersion,
)
from store.secrets import SecretBox, hash_token, new_token
from store.types import utcnow


async def test_migrations_are_recorded_and_run_once(database: Database) -> None:
    assert await migrate(database.engine) == []
    async with database.sessions() as session:
        versions = (await session.scalars(select(SchemaVersion.version))).all()
    assert list(versions) == [s.version for s in STEPS]


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    def columns(conn):
        found = inspect(conn)
        return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}

    async with database.engine.connect() as conn:
        actual = await conn.run_sync(columns)
    expected = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    for table, cols in expected.items():
        assert actual.get(table) == cols, table


async def test_concurrent_migrations_do_not_race(database: Database) -> None:
    results = await asyncio.gather(*(migrate(database.engine) for _ in range(3)))
    assert results == [[], [], []]


async def _project(database: Database, name: str = "p") -> str:
    async with database.sessions.begin() as session:
        session.add(Project(id=f"prj-{name}", name=name))
    return f"prj-{name}"


def _cluster(project_id: str, cluster_id: str, name: str) -> Cluster:
    return Cluster(
        id=cluster_id,
        project_id=project_id,
        name=name,
        active_name=name,
        cloud_account_id="acc-1",
        gateway_id="system",
        spec={"name": name},
        phase="Pending",
        kubernetes_version="v1.30.4",
    )


async def test_live_cluster_names_are_unique_per_project(database: Database) -> None:
    project = await _project(database)
    async with database.sessions.begin() as session:
        session.add(_cluster(project, "cl-1", "web"))
    with pytest.raises(IntegrityError):
        async with database.sessions.begin() as session:
            session.add(_cluster(project, "cl-2", "web"))
    async with database.sessions.begin() as session:
        first = await session.get(Cluster, "cl-1")
        assert first is not None
        first.active_name = None  # what recording Deleted does
    async with database.sessions.begin() as session:
        session.add(_cluster(project, "cl-3", "web"))


async def test_datetimes_come_back_aware_utc(database: Database) -> None:
    project = await _project(database)
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with database.sessions.begin() as session:
        cluster = _cluster(project, "cl-t", "t")
        cluster.last_heartbeat_at = at
        session.add(cluster)
    async with database.sessions() as session:
        got = await session.get(Cluster, "cl-t")
    assert got is not None and got.last_heartbeat_at == at
    assert got.last_heartbeat_at.tzinfo is not None
    with pytest.raises(Exception, match="timezone-aware"):
        async with database.sessions.begin() as session:
            bad = _cluster(project, "cl-n", "n")
            bad.last_heartbeat_at = datetime(2030, 1, 1)
            session.add(bad)


async def test_upsert_inserts_then_updates(database: Database) -> None:
    project = await _project(database)
    async with database.sessions.begin() as session:
        session.add(Gateway(id="gw-1", project_id=project, name="g", proxy={}))
    for version in ("1", "2"):
        async with database.sessions.begin() as session:
            values = {
                "gateway_id": "gw-1",
                "replica_id": "r",
                "version": version,
                "maas_reachable": {"u": True},
                "last_seen": utcnow(),
            }
            await session.execute(
                upsert(session, GatewayReplica.__table__, values, ["gateway_id", "replica_id"])
            )
    async with database.sessions() as session:
        rows = (await session.scalars(select(GatewayReplica))).all()
    assert [(r.replica_id, r.version) for r in rows] == [("r", "2")]


def test_secret_box_roundtrip_and_wrong_key(tmp_path) -> None:
    box = SecretBox("k" * 32)
    sealed = box.encrypt("maas-key")
    assert "maas-key" not in sealed
    assert box.decrypt(sealed) == "maas-key"
    with pytest.raises(ValueError, match="store key"):
        SecretBox("other").decrypt(sealed)
    dev = Settings(_env_file=None, data_dir=tmp_path)
    assert SecretBox.from_settings(dev).decrypt(SecretBox.from_settings(dev).encrypt("x")) == "x"
    assert (tmp_path / "secrets" / "store-key").stat().st_mode & 0o077 == 0


def test_tokens_and_hashes() -> None:
    token = new_token("mgk")
    assert token.startswith("mgk_") and len(token) > 40
    assert hash_token(token) == hash_token(token) != hash_token(new_token("mgk"))


async def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    db = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        async with db.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
    finally:
        await db.close()


async def test_renamed_phase_names_are_rewritten_in_stored_rows(database: Database) -> None:
    """A cluster stored as WaitingForAgent is JoiningNodes, so filters on the phase find it."""
    project_id = await _project(database, "renamed")
    old = _cluster(project_id, "cl-old-phase", "old-phase")
    old.phase = "WaitingForAgent"
    async with database.sessions.begin() as session:
        session.add(old)
        await session.flush()
        session.add(ClusterEvent(cluster_id=old.id, phase="WaitingForAgent", message="cp ready"))
    step = next(s for s in STEPS if s.description == "renamed phases")

    async with database.engine.begin() as conn:
        await conn.run_sync(step.apply)

    async with database.sessions() as session:
        assert await session.scalar(select(Cluster.phase).where(Cluster.id == old.id)) == (
            Phase.JOINING_NODES.value
        )
        events = (await session.scalars(select(ClusterEvent.phase))).all()
        assert list(events) == [Phase.JOINING_NODES.value]
