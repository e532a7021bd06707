"""Agent last-seen times, buffered in memory and written in one batch every few seconds.

A heartbeat that changes nothing costs one indexed SELECT and no write; the batch keeps
the silence sweep's `last_heartbeat_at` fresh to within the flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import bindparam, or_, update

from store.db import SessionFactory
from store.models import Cluster
from store.types import utcnow

log = logging.getLogger(__name__)


class HeartbeatRecorder:
    def __init__(self, sessions: SessionFactory, interval: float = 2.0) -> None:
        self._sessions = sessions
        self._interval = interval
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self.received = 0  # served as metalgate_agent_heartbeats_total

    def seen(self, cluster_id: str) -> None:
        self.received += 1
        self._pending[cluster_id] = utcnow()

    async def flush(self) -> int:
        batch, self._pending = self._pending, {}
        if not batch:
            return 0
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
        return len(rows)

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
