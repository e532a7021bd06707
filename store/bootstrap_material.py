"""Each cluster's kubeadm bootstrap material: created once, encrypted at rest, token rotated.

Every node of a cluster, including ones a scale or repave adds much later, must trust the
same CA, so the material is made on the first render and read back by every other one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bootstrap.material import ClusterBootstrap, ClusterMaterial, new_cluster_material
from bootstrap.tokens import BootstrapToken, window_token
from store.db import SessionFactory
from store.models import ClusterBootstrapRow
from store.secrets import SecretBox
from store.types import utcnow


class BootstrapMaterialStore:
    """Get-or-create by the cluster's primary key, so concurrent renders agree on one CA."""

    def __init__(self, sessions: SessionFactory, box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    async def get_or_create(
        self, cluster_id: str, *, token_ttl: timedelta, token_margin: timedelta
    ) -> ClusterBootstrap:
        """The cluster's material, with a token valid for at least `token_margin` more."""
        found = await self._load(cluster_id)
        if found is None:
            # Four RSA keys: CPU-bound, so off the event loop. A concurrent render may make
            # its own; only the first insert is kept and both return that one.
            material = await asyncio.to_thread(new_cluster_material)
            await self._insert_if_absent(
                cluster_id, material, window_token(material.token_seed, token_ttl, utcnow())
            )
            found = await self._load(cluster_id)
            assert found is not None, "inserted or already present"
        now = utcnow()
        if found.token.expires_within(token_margin, now):
            # The current window's token: control-plane nodes already keep it in the cluster.
            fresh = window_token(found.material.token_seed, token_ttl, now)
            await self._replace_token(cluster_id, found.token.token_id, fresh)
            found = await self._load(cluster_id)
            assert found is not None, "rotation never deletes the row"
        return found

    async def drop(self, cluster_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ClusterBootstrapRow).where(ClusterBootstrapRow.cluster_id == cluster_id)
            )

    async def _load(self, cluster_id: str) -> ClusterBootstrap | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(ClusterBootstrapRow).where(ClusterBootstrapRow.cluster_id == cluster_id)
            )
        if row is None:
            return None
        return ClusterBootstrap(
            material=ClusterMaterial.model_validate_json(self._box.decrypt(row.material_enc)),
            token=BootstrapToken.model_validate_json(self._box.decrypt(row.token_enc)),
        )

    async def _insert_if_absent(
        self, cluster_id: str, material: ClusterMaterial, token: BootstrapToken
    ) -> None:
        async with self._sessions.begin() as session:
            values = {
                "cluster_id": cluster_id,
                "material_enc": self._box.encrypt(material.model_dump_json()),
                **self._token_columns(token),
                "created_at": utcnow(),
            }
            insert = _insert_for(session)
            await session.execute(
                insert(ClusterBootstrapRow)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["cluster_id"])
            )

    async def _replace_token(self, cluster_id: str, old_id: str, token: BootstrapToken) -> None:
        """Compare-and-set on the token id: of two concurrent rotations, one wins."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(ClusterBootstrapRow)
                .where(
                    ClusterBootstrapRow.cluster_id == cluster_id,
                    ClusterBootstrapRow.token_id == old_id,
                )
                .values(**self._token_columns(token))
            )

    def _token_columns(self, token: BootstrapToken) -> dict[str, object]:
        return {
            "token_enc": self._box.encrypt(token.model_dump_json()),
            "token_id": token.token_id,
            "token_expires_at": token.expires_at,
            "updated_at": utcnow(),
        }


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
