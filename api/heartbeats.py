"""Agent last-seen times, buffered in memory and written in one batch every few seconds.

A heartbeat that changes nothing costs one indexed SELECT and no write; the batch keeps
the silence sweep's `last_heartbeat_at` fresh to within the flush interval, and each node's
`last_seen_at` (store/node_silence.py) to within `node_every` seconds: a node is written at
most once per `node_every`, so per-node liveness costs a write per node per interval, not
one per heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, or_, update

from domain.lifecycle import DEFAULT_NODE_SILENCE_SECONDS
from store.db import SessionFactory
from store.models import Cluster
from store.node_silence import touch_nodes
from store.types import utcnow

log = logging.getLogger(__name__)


class HeartbeatRecorder:
    def __init__(
        self,
        sessions: SessionFactory,
        interval: float = 2.0,
        *,
        node_every: float = DEFAULT_NODE_SILENCE_SECONDS / 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._node_every = node_every
        self._clock = clock
        self._pending: dict[str, datetime] = {}
        self._pending_nodes: dict[tuple[str, str], datetime] = {}
        # When each node was last queued for a write (monotonic), for the node_every bound.
        self._node_queued: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        self.received = 0  # served as metalgate_agent_heartbeats_total

    def seen(self, cluster_id: str, hostname: str) -> None:
        self.received += 1
        now = utcnow()
        self._pending[cluster_id] = now
        key, tick = (cluster_id, hostname), self._clock()
        if tick - self._node_queued.get(key, -self._node_every) >= self._node_every:
            self._node_queued[key] = tick
            self._pending_nodes[key] = now

    async def flush(self) -> int:
        """Write the batch; answers how many clusters and nodes it wrote."""
        batch, self._pending = self._pending, {}
        nodes, self._pending_nodes = self._pending_nodes, {}
        tick = self._clock()
        # Forgotten nodes are queued again at their next heartbeat: the map stays bounded.
        self._node_queued = {
            k: t for k, t in self._node_queued.items() if tick - t < self._node_every
        }
        try:
            written = await touch_nodes(self._sessions, nodes)
        except Exception:
            for key, at in nodes.items():
                self._pending_nodes.setdefault(key, at)
            for cluster_id, at in batch.items():
                self._pending.setdefault(cluster_id, at)
            raise
        if not batch:
            return written
        table = Cluster.__table__
        stmt = (
            update(table)  # type: ignore[arg-type]
            .where(
                table.c.id == bindparam("b_id"),
                # Several API replicas flush independently: never move last-seen backwards.
                or_(
                    table.c.last_heartbeat_at.is_(None),
                    table.c.last_heartbeat_at < bindparam("b_at"),
                ),
            )
            .values(last_heartbeat_at=bindparam("b_at"))
        )
        rows = [{"b_id": cluster_id, "b_at": at} for cluster_id, at in batch.items()]
        try:
            async with self._sessions.begin() as session:
                await session.execute(stmt, rows)
        except Exception:
            # Keep the times for the next flush unless newer ones arrived meanwhile.
            for cluster_id, at in batch.items():
                self._pending.setdefault(cluster_id, at)
            raise
        return len(rows) + written

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("flushing agent heartbeats failed; retrying next interval")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="heartbeat-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
