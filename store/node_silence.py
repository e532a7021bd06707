"""Per-node agent silence: last-seen times, and the nodes whose agent went quiet.

A cluster whose agents all stop is the silence sweep's `silent` cluster. One node whose own
agent stops while the others report is not: its last stored report still says Ready. The
heartbeat batch keeps each node's `last_seen_at` (`touch_nodes`); the sweep marks a node
quiet past the cutoff silent (`mark_silent_nodes`): its stored state becomes not Ready with
`silent_since`, queued through the outbox like any change, so the management workflow sees
it and the remediation ladder counts it unhealthy. The node's next report clears it
(`record_change` writes `silent=False`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, and_, bindparam, or_, select, update

from store.agent_outbox import fingerprint, queue_signal
from store.db import SessionFactory
from store.models import AgentNode, Cluster
from store.types import utcnow

NODES = cast(Table, AgentNode.__table__)


class SilentNode(BaseModel):
    cluster_id: str
    hostname: str
    last_seen_at: datetime
    # False for a node no longer among the cluster's machines: marked, nobody is told.
    queued: bool


async def touch_nodes(sessions: SessionFactory, seen: dict[tuple[str, str], datetime]) -> int:
    """Record when each (cluster id, hostname) was last heard from; never moves backwards."""
    if not seen:
        return 0
    stmt = (
        update(NODES)
        .where(
            NODES.c.cluster_id == bindparam("b_cluster"),
            NODES.c.hostname == bindparam("b_host"),
            or_(NODES.c.last_seen_at.is_(None), NODES.c.last_seen_at < bindparam("b_at")),
        )
        .values(last_seen_at=bindparam("b_at"))
    )
    rows = [{"b_cluster": c, "b_host": h, "b_at": at} for (c, h), at in seen.items()]
    async with sessions.begin() as session:
        await session.execute(stmt, rows)
    return len(rows)


def silent_state(report: dict[str, Any], since: datetime) -> dict[str, Any]:
    """The node's last report, not Ready since `since`: what its workflow is told."""
    node = {**report.get("node", {}), "ready": False, "silent_since": since.timestamp()}
    message = f"agent silent since {since.isoformat(timespec='seconds')}"
    return {**report, "node": node, "message": message}


async def mark_silent_nodes(
    sessions: SessionFactory,
    *,
    cutoff: datetime,
    phases: Collection[str],
    limit: int = 1000,
) -> list[SilentNode]:
    """Mark nodes not heard from since `cutoff` silent, and queue the cluster's signal.

    Only nodes of clusters in `phases` that are not silent as a whole (that is the cluster
    sweep's). A node heard from, or changed, since it was read is left for the next sweep.
    """
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    NODES.c.cluster_id,
                    NODES.c.hostname,
                    NODES.c.fingerprint,
                    NODES.c.report,
                    NODES.c.last_seen_at,
                    Cluster.machines,
                )
                .join(Cluster, Cluster.id == NODES.c.cluster_id)
                .where(
                    NODES.c.silent.is_(False),
                    NODES.c.last_seen_at < cutoff,
                    Cluster.silent.is_(False),
                    Cluster.phase.in_(list(phases)),
                )
                .order_by(NODES.c.last_seen_at)
                .limit(limit)
            )
        ).all()
    marked: list[SilentNode] = []
    for row in rows:
        machine = row.hostname in {m.get("hostname") for m in row.machines}
        state = silent_state(row.report, row.last_seen_at) if machine else row.report
        now = utcnow()
        values: dict[str, Any] = {
            "silent": True,
            "report": state,
            "fingerprint": fingerprint(state),
            "updated_at": now,
        }
        if machine:
            values["pending"] = True
        async with sessions.begin() as session:
            changed = await session.execute(
                update(NODES)
                .where(
                    and_(
                        NODES.c.cluster_id == row.cluster_id,
                        NODES.c.hostname == row.hostname,
                        NODES.c.fingerprint == row.fingerprint,
                        NODES.c.last_seen_at == row.last_seen_at,
                        NODES.c.silent.is_(False),
                    )
                )
                .values(**values)
            )
            if getattr(changed, "rowcount", 0) != 1:
                continue
            if machine:
                await queue_signal(session, cluster_id=row.cluster_id, now=now)
        marked.append(
            SilentNode(
                cluster_id=row.cluster_id,
                hostname=row.hostname,
                last_seen_at=row.last_seen_at,
                queued=machine,
            )
        )
    return marked
