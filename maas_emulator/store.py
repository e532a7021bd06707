"""SQLite persistence: the inventory is kept in memory and written through on every change.

Writes run on the event loop on purpose: a WAL append with synchronous=NORMAL costs tens of
microseconds, and committing before the HTTP answer means a kill -9 never loses a change a
client was told about (the OS still holds the WAL pages).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from maas_emulator.models import (
    BootResource,
    DnsResource,
    Domain,
    Event,
    EventLevel,
    Machine,
    ResourcePool,
    StaticIP,
    Subnet,
    Tag,
    User,
    Zone,
)

M = TypeVar("M", bound=BaseModel)


class Table(enum.StrEnum):
    MACHINES = "machines"
    USERS = "users"
    TAGS = "tags"
    ZONES = "zones"
    POOLS = "pools"
    SUBNETS = "subnets"
    IP_ADDRESSES = "ip_addresses"
    DOMAINS = "domains"
    DNS_RESOURCES = "dns_resources"
    BOOT_RESOURCES = "boot_resources"


_SCHEMA = [
    *(f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, doc TEXT NOT NULL)" for t in Table),
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        system_id TEXT NOT NULL, hostname TEXT NOT NULL, username TEXT NOT NULL,
        level INTEGER NOT NULL, type TEXT NOT NULL, description TEXT NOT NULL,
        created REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_system_id ON events (system_id, id)",
]

_MODELS: dict[Table, type[BaseModel]] = {
    Table.MACHINES: Machine,
    Table.USERS: User,
    Table.TAGS: Tag,
    Table.ZONES: Zone,
    Table.POOLS: ResourcePool,
    Table.SUBNETS: Subnet,
    Table.IP_ADDRESSES: StaticIP,
    Table.DOMAINS: Domain,
    Table.DNS_RESOURCES: DnsResource,
    Table.BOOT_RESOURCES: BootResource,
}


class Store:
    """One SQLite file per data dir; callers batch changes and then `commit()`."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "maas.sqlite3")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def load(self, table: Table, model: type[M]) -> list[M]:
        assert _MODELS[table] is model
        rows = self._db.execute(f"SELECT doc FROM {table} ORDER BY rowid")
        return [model.model_validate_json(doc) for (doc,) in rows]

    def put(self, table: Table, key: str, doc: BaseModel) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} (key, doc) VALUES (?, ?)",
            (key, doc.model_dump_json()),
        )

    def delete(self, table: Table, key: str) -> None:
        self._db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    def add_event(self, event: Event) -> int:
        cursor = self._db.execute(
            "INSERT INTO events (system_id, hostname, username, level, type, description,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.system_id,
                event.hostname,
                event.username,
                int(event.level),
                event.type,
                event.description,
                event.created,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def commit(self) -> None:
        self._db.commit()

    def query_events(
        self,
        *,
        system_ids: Sequence[str] | None,
        min_level: EventLevel,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> list[Event]:
        """Newest first; with `after`, the `limit` events right after it (still newest first)."""
        where = ["level >= ?"]
        args: list[object] = [int(min_level)]
        if system_ids is not None:
            where.append(f"system_id IN ({','.join('?' * len(system_ids))})")
            args.extend(system_ids)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if after is not None:
            where.append("id > ?")
            args.append(after)
        order = "ASC" if after is not None else "DESC"
        sql = (
            "SELECT id, system_id, hostname, username, level, type, description, created"
            f" FROM events WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?"
        )
        rows = list(self._db.execute(sql, [*args, limit]))
        if after is not None:
            rows.reverse()
        return list(_events(rows))


def _events(rows: list[tuple[object, ...]]) -> Iterator[Event]:
    fields = ("id", "system_id", "hostname", "username", "level", "type", "description", "created")
    for row in rows:
        yield Event.model_validate(dict(zip(fields, row, strict=True)))
