"""The agent report outbox: changes wait here to be signalled to the cluster's workflow.

The API writes a node's changed state and its cluster's outbox row in one transaction
(`record_change`). A sender claims due rows under a lease (`claim`), signals with no store
session open, and settles them (`settle`). One row per cluster, so changes made while a
signal is in flight coalesce into the next one, which carries the latest state; the lease
keeps one signal per cluster in flight across API replicas.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import SessionFactory, upsert
from store.models import AgentNode, AgentOutboxRow, Cluster
from store.types import utcnow

OUTBOX = cast(Table, AgentOutboxRow.__table__)
NODES = cast(Table, AgentNode.__table__)


class NodeRecord(BaseModel):
    hostname: str
    fingerprint: str
    state: dict[str, Any]
    pending: bool


class ClaimedReport(BaseModel):
    """One cluster's outbox row under this sender's lease, with every node's stored state."""

    cluster_id: str
    change_id: str
    lease: str
    attempts: int
    phase: str
    kubernetes_version: str
    nodes: list[NodeRecord]

    @property
    def changed(self) -> list[NodeRecord]:
        return [n for n in self.nodes if n.pending]


class RetryLater(BaseModel):
    report: ClaimedReport
    delay_seconds: float
    error: str


def fingerprint(state: dict[str, Any]) -> str:
    """What tells a node's new state from the stored one: a hash of all of it."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


async def record_change(
    session: AsyncSession,
    *,
    cluster_id: str,
    hostname: str,
    fingerprint: str,
    state: dict[str, Any],
    now: datetime,
) -> None:
    """Store a node's new state, as its agent reported it (so it is not silent), and queue
    its cluster for a signal (the caller commits)."""
    await session.execute(
        upsert(
            session,
            NODES,
            {
                "cluster_id": cluster_id,
                "hostname": hostname,
                "fingerprint": fingerprint,
                "report": state,
                "updated_at": now,
                "pending": True,
                "last_seen_at": now,
                "silent": False,
            },
            ["cluster_id", "hostname"],
        )
    )
    await queue_signal(session, cluster_id=cluster_id, now=now)


async def queue_signal(session: AsyncSession, *, cluster_id: str, now: datetime) -> None:
    """Queue the cluster's pending node changes for a signal (the caller commits)."""
    # On conflict only the change id moves: a row waiting out a backoff or the coalescing
    # interval keeps its time, and a leased row is sent again after its signal settles.
    await session.execute(
        upsert(
            session,
            OUTBOX,
            {
                "cluster_id": cluster_id,
                "change_id": uuid.uuid4().hex,
                "next_attempt_at": now,
                "attempts": 0,
                "last_error": "",
                "created_at": now,
            },
            ["cluster_id"],
            update=["change_id"],
        )
    )


async def claim(
    sessions: SessionFactory, *, limit: int, lease_seconds: float, now: datetime | None = None
) -> list[ClaimedReport]:
    """Lease up to `limit` due rows nobody holds, and read what their signals carry."""
    now = now or utcnow()
    lease = uuid.uuid4().hex
    free = or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now)
    due = (
        select(OUTBOX.c.cluster_id)
        .where(OUTBOX.c.next_attempt_at <= now, free)
        .order_by(OUTBOX.c.next_attempt_at)
        .limit(limit)
    )
    async with sessions() as session:
        # Most rounds find nothing due: a read, so they do not queue for SQLite's write lock.
        if (await session.execute(due.limit(1))).first() is None:
            return []
    async with sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        # One statement, so SQLite takes its write lock first (a read snapshot could not be
        # upgraded); the lease test is repeated on the row, so two claimers never share one.
        await session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.cluster_id.in_(due), free)
            .values(lease_owner=lease, lease_until=now + timedelta(seconds=lease_seconds))
        )
        # The change id is read before the nodes: a change committed in between is then
        # either in both reads or sent again, never marked sent while missing.
        rows = (
            await session.execute(
                select(
                    OUTBOX.c.cluster_id,
                    OUTBOX.c.change_id,
                    OUTBOX.c.attempts,
                    Cluster.phase,
                    Cluster.kubernetes_version,
                )
                .join(Cluster, Cluster.id == OUTBOX.c.cluster_id)
                .where(OUTBOX.c.lease_owner == lease)
            )
        ).all()
        if not rows:
            return []
        nodes: dict[str, list[NodeRecord]] = {r.cluster_id: [] for r in rows}
        for node in (
            await session.execute(
                select(
                    NODES.c.cluster_id,
                    NODES.c.hostname,
                    NODES.c.fingerprint,
                    NODES.c.report,
                    NODES.c.pending,
                )
                .where(NODES.c.cluster_id.in_(list(nodes)))
                .order_by(NODES.c.cluster_id, NODES.c.hostname)
            )
        ).all():
            nodes[node.cluster_id].append(
                NodeRecord(
                    hostname=node.hostname,
                    fingerprint=node.fingerprint,
                    state=node.report,
                    pending=bool(node.pending),
                )
            )
    return [
        ClaimedReport(
            cluster_id=r.cluster_id,
            change_id=r.change_id,
            lease=lease,
            attempts=r.attempts,
            phase=r.phase,
            kubernetes_version=r.kubernetes_version,
            nodes=nodes[r.cluster_id],
        )
        for r in rows
    ]


async def settle(
    sessions: SessionFactory,
    *,
    delivered: Sequence[ClaimedReport] = (),
    retry: Sequence[RetryLater] = (),
    dropped: Sequence[ClaimedReport] = (),
    coalesce_seconds: float = 0.0,
    now: datetime | None = None,
) -> None:
    """Record what the signals did, in one transaction.

    Delivered: the sent nodes are no longer pending and the row goes, unless a change came
    meanwhile: then it is due again after `coalesce_seconds`. Retry: the lease is given up
    and the row waits `delay_seconds`. Dropped (nobody will take it): the row goes.
    """
    now = now or utcnow()
    ours = and_(
        OUTBOX.c.cluster_id == bindparam("b_cluster"), OUTBOX.c.lease_owner == bindparam("b_lease")
    )
    async with sessions.begin() as session:
        sent = [
            {"b_cluster": r.cluster_id, "b_host": n.hostname, "b_fp": n.fingerprint}
            for r in delivered
            for n in r.changed
        ]
        if sent:
            await session.execute(
                update(NODES)
                .where(
                    NODES.c.cluster_id == bindparam("b_cluster"),
                    NODES.c.hostname == bindparam("b_host"),
                    NODES.c.fingerprint == bindparam("b_fp"),
                )
                .values(pending=False),
                sent,
            )
        if delivered:
            await session.execute(
                delete(OUTBOX).where(ours, OUTBOX.c.change_id == bindparam("b_change")),
                [
                    {"b_cluster": r.cluster_id, "b_lease": r.lease, "b_change": r.change_id}
                    for r in delivered
                ],
            )
            # Still here under our lease: changed while the signal was in flight.
            await session.execute(
                update(OUTBOX)
                .where(ours)
                .values(
                    lease_owner=None,
                    lease_until=None,
                    attempts=0,
                    next_attempt_at=now + timedelta(seconds=coalesce_seconds),
                ),
                [{"b_cluster": r.cluster_id, "b_lease": r.lease} for r in delivered],
            )
        if retry:
            await session.execute(
                update(OUTBOX)
                .where(ours)
                .values(
                    lease_owner=None,
                    lease_until=None,
                    attempts=OUTBOX.c.attempts + 1,
                    next_attempt_at=bindparam("b_at"),
                    last_error=bindparam("b_error"),
                ),
                [
                    {
                        "b_cluster": r.report.cluster_id,
                        "b_lease": r.report.lease,
                        "b_at": now + timedelta(seconds=r.delay_seconds),
                        "b_error": r.error[:2000],
                    }
                    for r in retry
                ],
            )
        if dropped:
            await session.execute(
                delete(OUTBOX).where(ours),
                [{"b_cluster": r.cluster_id, "b_lease": r.lease} for r in dropped],
            )
            await session.execute(
                update(NODES)
                .where(NODES.c.cluster_id.in_([r.cluster_id for r in dropped]))
                .values(pending=False)
            )
