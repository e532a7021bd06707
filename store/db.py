"""Engine and session factory from Settings: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import Insert

from runtime.settings import Settings
from store.migrations import migrate

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(
    url: str, pool_size: int | None = None, overflow: int | None = None
) -> AsyncEngine:
    pool: dict[str, int] = {}
    if pool_size is not None:
        pool["pool_size"] = pool_size
    if overflow is not None:
        pool["max_overflow"] = overflow
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run while a writer commits; busy_timeout queues writers
            # instead of failing them with "database is locked".
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(
        url, pool_pre_ping=True, **{"pool_size": 10, "max_overflow": 20, **pool}
    )


class Database:
    """One engine and its session factory; `open` migrates before anything reads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: SessionFactory = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        return await cls.open_url(
            settings.resolved_database_url(),
            pool_size=settings.database_pool_size,
            overflow=settings.database_pool_overflow,
        )

    @classmethod
    async def open_url(
        cls, url: str, pool_size: int | None = None, overflow: int | None = None
    ) -> Database:
        database = cls(create_engine(url, pool_size, overflow))
        await migrate(database.engine)
        return database

    async def close(self) -> None:
        await self.engine.dispose()


def upsert(
    session: AsyncSession,
    table: Any,
    values: dict[str, Any],
    keys: list[str],
    update: list[str] | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE (every other column, or `update`) for the
    session's dialect."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values)
    changed = update if update is not None else [k for k in values if k not in keys]
    updates = {k: stmt.excluded[k] for k in changed}
    return stmt.on_conflict_do_update(index_elements=keys, set_=updates)
