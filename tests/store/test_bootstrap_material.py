"""One CA per cluster, encrypted at rest, on SQLite and PostgreSQL, under concurrent renders."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from bootstrap.pki import discovery_hash
from bootstrap.tokens import BootstrapToken, window_token
from store.bootstrap_material import BootstrapMaterialStore
from store.db import Database
from store.migrations import migrate
from store.models import Cluster, ClusterBootstrapRow, Project, SchemaVersion
from store.secrets import SecretBox
from store.types import utcnow

TTL = timedelta(hours=24)
MARGIN = timedelta(hours=1)


async def add_cluster(database: Database, cluster_id: str = "cl-1") -> str:
    async with database.sessions.begin() as session:
        if await session.get(Project, "prj-1") is None:
            session.add(Project(id="prj-1", name="p"))
            await session.flush()
        session.add(
            Cluster(
                id=cluster_id, project_id="prj-1", name=cluster_id, active_name=cluster_id,
                cloud_account_id="acc", gateway_id="system", spec={}, phase="Pending",
                kubernetes_version="v1.30.4",
            )
        )  # fmt: skip
    return cluster_id


def material_store(database: Database) -> BootstrapMaterialStore:
    return BootstrapMaterialStore(database.sessions, SecretBox("test-store-key"))


async def rows(database: Database) -> list[ClusterBootstrapRow]:
    async with database.sessions() as session:
        return list((await session.scalars(select(ClusterBootstrapRow))).all())


async def test_made_once_and_encrypted_at_rest(database: Database) -> None:
    cluster_id = await add_cluster(database)
    store = material_store(database)
    first = await store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN)
    again = await store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN)
    assert again == first
    (row,) = await rows(database)
    assert first.material.pki.ca.key_pem.splitlines()[1] not in row.material_enc
    assert first.material.certificate_key not in row.material_enc
    assert first.token.value not in row.token_enc and row.token_id == first.token.token_id


async def test_concurrent_renders_agree_on_one_ca(database: Database) -> None:
    cluster_id = await add_cluster(database)
    store = material_store(database)
    made = await asyncio.gather(
        *(store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN) for _ in range(6))
    )
    assert len({discovery_hash(m.material.pki.ca.cert_pem) for m in made}) == 1
    assert len({m.token.value for m in made}) == 1
    assert len(await rows(database)) == 1


async def test_a_token_near_expiry_is_rotated_once_and_the_ca_kept(database: Database) -> None:
    cluster_id = await add_cluster(database)
    store = material_store(database)
    first = await store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN)
    expiring = BootstrapToken(
        value="abcdef.0123456789abcdef", expires_at=utcnow() + timedelta(minutes=30)
    )
    box = SecretBox("test-store-key")
    async with database.sessions.begin() as session:
        await session.execute(
            update(ClusterBootstrapRow).values(
                token_enc=box.encrypt(expiring.model_dump_json()),
                token_id=expiring.token_id,
                token_expires_at=expiring.expires_at,
            )
        )
    rotated = await asyncio.gather(
        *(store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN) for _ in range(4))
    )
    tokens = {r.token.value for r in rotated}
    assert len(tokens) == 1 and expiring.value not in tokens
    # The current window's token, which the control-plane nodes keep in the cluster.
    assert rotated[0].token == window_token(first.material.token_seed, TTL, utcnow())
    assert rotated[0].token.expires_at > utcnow() + TTL / 2
    assert {r.material for r in rotated} == {first.material}


async def test_drop_forgets_the_material(database: Database) -> None:
    kept, dropped = await add_cluster(database, "cl-keep"), await add_cluster(database, "cl-drop")
    store = material_store(database)
    for cluster_id in (kept, dropped):
        await store.get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN)
    await store.drop(dropped)
    await store.drop(dropped)  # idempotent, like every delete step
    assert [r.cluster_id for r in await rows(database)] == [kept]


async def test_migration_adds_the_table_to_an_existing_store(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text("DROP TABLE cluster_bootstrap"))
        await conn.execute(delete(SchemaVersion).where(SchemaVersion.version == 2))
    assert await migrate(database.engine) == [2]
    cluster_id = await add_cluster(database)
    await material_store(database).get_or_create(cluster_id, token_ttl=TTL, token_margin=MARGIN)
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ClusterBootstrapRow)) == 1
