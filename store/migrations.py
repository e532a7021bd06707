"""Versioned schema steps, recorded in `schema_version`; each step runs once, in order.

Step 1 builds the schema from the models because nothing has shipped yet. Once a release
ships, step 1 is frozen: later model changes are new steps (ALTER/CREATE), and
tests/store/test_migrations.py checks that the migrated schema matches the models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.phases import RENAMED_PHASES
from store.models import (
    AgentOutboxRow,
    Base,
    ClusterBootstrapRow,
    IdempotencyRecord,
    SchemaVersion,
)
from store.types import utcnow

log = logging.getLogger(__name__)

# Any constant works: every metalgate process that migrates takes the same lock.
PG_MIGRATION_LOCK = 0x6D67_7374


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial_schema(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _cluster_bootstrap(conn: Connection) -> None:
    # A fresh store got the table from step 1 already.
    ClusterBootstrapRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _idempotency_keys(conn: Connection) -> None:
    # A store made by step 1 before this table existed; a newer step 1 made it already.
    IdempotencyRecord.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _add_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE ADD for each column a database made by an older step 1 lacks."""
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, sql_type in columns.items():
        if name not in present:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))


def _lifecycle_and_audit(conn: Connection) -> None:
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    _add_columns(
        conn,
        "api_keys",
        {"expires_at": stamp, "last_used_at": stamp, "revoked_at": stamp},
    )
    _add_columns(conn, "gateways", {"revoked_at": stamp})
    Base.metadata.tables["audit_log"].create(conn, checkfirst=True)


def _agent_outbox(conn: Connection) -> None:
    _add_columns(conn, "agent_nodes", {"pending": "BOOLEAN NOT NULL DEFAULT false"})
    AgentOutboxRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _sealed_secrets(conn: Connection) -> None:
    _add_columns(conn, "gateways", {"sealing_public_key": "VARCHAR(64)"})
    _add_columns(
        conn,
        "cloud_accounts",
        {"maas_api_key_sealed": "TEXT", "maas_api_key_fingerprint": "VARCHAR(32)"},
    )


def _renamed_phases(conn: Connection) -> None:
    # Filters on the phase column (reconcile, list by phase) compare the stored string.
    for table in ("clusters", "cluster_events"):
        for old, new in RENAMED_PHASES.items():
            conn.execute(
                text(f"UPDATE {table} SET phase = :new WHERE phase = :old"),
                {"new": new, "old": old},
            )


def _node_silence(conn: Connection) -> None:
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    _add_columns(
        conn, "agent_nodes", {"last_seen_at": stamp, "silent": "BOOLEAN NOT NULL DEFAULT false"}
    )
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ix_agent_nodes_silence ON agent_nodes (silent, last_seen_at)"
        )
    )


def _management_paused(conn: Connection) -> None:
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    _add_columns(conn, "clusters", {"management_paused_at": stamp})


STEPS: tuple[Step, ...] = (
    Step(1, "initial schema", _initial_schema),
    Step(2, "cluster bootstrap material", _cluster_bootstrap),
    Step(3, "idempotency keys", _idempotency_keys),
    Step(4, "key and gateway lifecycle, audit log", _lifecycle_and_audit),
    Step(5, "agent report outbox", _agent_outbox),
    Step(6, "secrets sealed to gateways", _sealed_secrets),
    Step(7, "renamed phases", _renamed_phases),
    Step(8, "per-node agent silence", _node_silence),
    Step(9, "management pause shown", _management_paused),
)


def _pending(conn: Connection) -> list[Step]:
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        SchemaVersion.__table__.create(conn)  # type: ignore[attr-defined]
    applied = set(conn.execute(select(SchemaVersion.version)).scalars())
    return [step for step in STEPS if step.version not in applied]


async def migrate(engine: AsyncEngine) -> list[int]:
    """Apply the steps not yet recorded; safe when several processes start at once."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        else:
            # Take SQLite's write lock now, so a concurrent migrator waits instead of racing.
            await conn.execute(text("CREATE TABLE IF NOT EXISTS _migration_lock (x INTEGER)"))
        steps = await conn.run_sync(_pending)
        for step in steps:
            log.info("store migration %d: %s", step.version, step.description)
            await conn.run_sync(step.apply)
            await conn.execute(
                SchemaVersion.__table__.insert().values(  # type: ignore[attr-defined]
                    version=step.version, description=step.description, applied_at=utcnow()
                )
            )
    return [step.version for step in steps]
