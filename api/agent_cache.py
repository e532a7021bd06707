"""An in-process cache of agent tokens, so an unchanged heartbeat touches no store session.

Maps an agent token's hash to what the heartbeat needs to decide "nothing changed": the
cluster id, its phase, its `silent` flag and the last stored fingerprint of each node.

It is only an optimisation: the store stays the source of truth, and several API replicas
each keep their own cache. Bounds on how far an entry may lag the store:

- an entry is used for at most `ttl` seconds (default 5 s) after it was last read from the
  store; a background task re-reads every cached entry in batches every `ttl / 2` seconds, and
  an entry that is not re-read in time is dropped and loaded again on the next heartbeat;
- so a revoked token (or a deleted cluster) stops working within `ttl` seconds, a cluster the
  silence sweep marked silent is seen as silent within `ttl` seconds, and a node change
  recorded through another replica is seen within `ttl` seconds;
- this replica's own slow path updates the entry as soon as it has stored a change.

The cache holds at most `max_entries` tokens (least recently used dropped first). Unknown or
revoked tokens are never cached: they always ask the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from store.db import SessionFactory
from store.models import AgentNode, Cluster

log = logging.getLogger(__name__)

DEFAULT_TTL = 5.0
DEFAULT_MAX_ENTRIES = 100_000
REFRESH_CHUNK = 500


@dataclass
class AgentEntry:
    cluster_id: str
    phase: str
    silent: bool
    fingerprints: dict[str, str] = field(default_factory=dict)  # hostname -> fingerprint
    valid_until: float = 0.0


class AgentCache:
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, AgentEntry] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str) -> AgentEntry | None:
        """The fresh entry for this token, or None (unknown, or too old to trust)."""
        entry = self._entries.get(token_hash)
        if entry is None:
            self.misses += 1
            return None
        if entry.valid_until <= self._clock():
            del self._entries[token_hash]
            self.misses += 1
            return None
        self._entries.move_to_end(token_hash)
        self.hits += 1
        return entry

    def put(self, token_hash: str, entry: AgentEntry, read_at: float) -> None:
        """Remember what the store said at `read_at` (taken before the read started)."""
        entry.valid_until = read_at + self.ttl
        self._entries[token_hash] = entry
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def remember(self, token_hash: str, hostname: str, fingerprint: str) -> None:
        """The slow path stored (and signalled) this node's state; the cluster is not silent."""
        entry = self._entries.get(token_hash)
        if entry is not None:
            entry.fingerprints[hostname] = fingerprint
            entry.silent = False

    def forget(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    def now(self) -> float:
        return self._clock()

    async def load(self, sessions: SessionFactory, token_hash: str) -> AgentEntry | None:
        """Read one token's cluster and node fingerprints from the store and cache them."""
        read_at = self._clock()
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Cluster.id,
                        Cluster.phase,
                        Cluster.silent,
                        AgentNode.hostname,
                        AgentNode.fingerprint,
                    )
                    .outerjoin(AgentNode, AgentNode.cluster_id == Cluster.id)
                    .where(Cluster.agent_token_hash == token_hash)
                )
            ).all()
        if not rows:
            self.forget(token_hash)
            return None
        cluster_id, phase, silent = rows[0][0], rows[0][1], rows[0][2]
        entry = AgentEntry(
            cluster_id=cluster_id,
            phase=phase,
            silent=bool(silent),
            fingerprints={h: f for _, _, _, h, f in rows if h is not None and f is not None},
        )
        self.put(token_hash, entry, read_at)
        return entry

    async def refresh(self, sessions: SessionFactory) -> int:
        """Re-read every cached entry from the store in batches; drop revoked tokens."""
        hashes = list(self._entries)
        refreshed = 0
        for at in range(0, len(hashes), REFRESH_CHUNK):
            chunk = hashes[at : at + REFRESH_CHUNK]
            read_at = self._clock()
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(
                            Cluster.agent_token_hash,
                            Cluster.id,
                            Cluster.phase,
                            Cluster.silent,
                            AgentNode.hostname,
                            AgentNode.fingerprint,
                        )
                        .outerjoin(AgentNode, AgentNode.cluster_id == Cluster.id)
                        .where(Cluster.agent_token_hash.in_(chunk))
                    )
                ).all()
            found: dict[str, AgentEntry] = {}
            for row_hash, cluster_id, phase, silent, hostname, fp in rows:
                if row_hash is None:
                    continue
                entry = found.get(row_hash)
                if entry is None:
                    entry = found[row_hash] = AgentEntry(cluster_id, phase, bool(silent))
                if hostname is not None and fp is not None:
                    entry.fingerprints[hostname] = fp
            for token_hash in chunk:
                entry = found.get(token_hash)
                if entry is None:
                    self.forget(token_hash)  # revoked, or the cluster is gone
                elif token_hash in self._entries:  # not evicted meanwhile
                    entry.valid_until = read_at + self.ttl
                    self._entries[token_hash] = entry
                    refreshed += 1
        return refreshed

    async def _loop(self, sessions: SessionFactory) -> None:
        while True:
            await asyncio.sleep(self.ttl / 2)
            try:
                await self.refresh(sessions)
            except Exception:
                # Entries then expire after `ttl` and heartbeats fall back to the store.
                log.exception("refreshing the agent token cache failed; retrying")

    def start(self, sessions: SessionFactory) -> None:
        self._task = asyncio.create_task(self._loop(sessions), name="agent-cache-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
