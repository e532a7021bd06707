"""The store on both back ends: a SQLite file, and a fresh schema in the PostgreSQL `test` db."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from store.db import Database, create_engine
from store.migrations import migrate
from tests.conftest import postgres_url


async def _postgres_reachable(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return str(exc)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"))
        await migrate(db.engine)
        yield db
        await db.close()
        return
    url = postgres_url()
    assert url is not None
    problem = await _postgres_reachable(url)
    if problem is not None:
        if os.environ.get("METALGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL at {url} is required (METALGATE_REQUIRE_POSTGRES=1): {problem}"
            )
        pytest.skip(f"PostgreSQL at {url} unreachable ({problem}); set METALGATE_TEST_POSTGRES_URL")
    # Each test gets its own schema, so runs never see each other's rows.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    db = Database(engine)
    await migrate(db.engine)
    try:
        yield db
    finally:
        await db.close()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
