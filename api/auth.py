"""API keys: the bootstrap operator key, and who may do what in a project."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.schemas.projects import Role
from runtime.settings import Settings, development_secret
from store.db import SessionFactory
from store.models import ApiKey, Project
from store.secrets import hash_token, new_id, new_token

DEFAULT_PROJECT = "default"
ADMIN_KEY_FILE = "admin-api-key"
_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one project; the operator key may also create projects."""

    key_id: str
    project_id: str
    role: Role
    operator: bool
    name: str = ""

    def can(self, needed: Role) -> bool:
        return _RANK[self.role] >= _RANK[needed]


def new_api_key() -> str:
    return new_token("mgk")


async def ensure_bootstrap(sessions: SessionFactory, settings: Settings) -> str:
    """Create the default project and the operator key once; returns the project id.

    The key comes from settings, else it is generated and written (0600) to
    <data_dir>/secrets/admin-api-key, where `metalgate up` reads it to print it.
    """
    if settings.bootstrap_admin_key is not None:
        key = settings.bootstrap_admin_key.get_secret_value()
    else:
        key = development_secret(settings, ADMIN_KEY_FILE, new_api_key)
    try:
        return await _store_bootstrap(sessions, key)
    except IntegrityError:
        # Another API replica bootstrapped at the same moment; its rows are what we wanted.
        return await _store_bootstrap(sessions, key)


async def _store_bootstrap(sessions: SessionFactory, key: str) -> str:
    async with sessions.begin() as session:
        project = await session.scalar(select(Project).where(Project.name == DEFAULT_PROJECT))
        if project is None:
            project = Project(id=new_id("prj"), name=DEFAULT_PROJECT)
            session.add(project)
            await session.flush()
        key_hash = hash_token(key)
        if await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash)) is None:
            session.add(
                ApiKey(
                    id=new_id("key"),
                    project_id=project.id,
                    name="bootstrap-admin",
                    role=Role.ADMIN.value,
                    operator=True,
                    key_hash=key_hash,
                )
            )
        return project.id
