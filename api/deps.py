"""FastAPI dependencies as `Annotated` aliases: store session, caller, Temporal, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.audit import Actor, set_actor
from api.auth import Principal
from api.schemas.projects import Role
from api.temporal_gate import TemporalGate
from runtime.settings import Settings
from store.models import ApiKey, Cluster
from store.secrets import SecretBox, hash_token
from store.types import utcnow

bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer mgk_...`")
agent_bearer = HTTPBearer(
    auto_error=False, scheme_name="AgentToken", description="the cluster's agent token"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
AgentBearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(agent_bearer)]

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
LAST_USED_RESOLUTION = timedelta(minutes=1)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.box
    return box


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.sessions() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    gate: TemporalGate = request.app.state.temporal
    return await gate.client()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
BoxDep = Annotated[SecretBox, Depends(get_box)]


def _token(credentials: HTTPAuthorizationCredentials | None, what: str) -> str:
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, f"missing credentials: send `Authorization: Bearer <{what}>`", UNAUTHORIZED
        )
    return credentials.credentials


async def get_principal(request: Request, credentials: BearerDep, session: SessionDep) -> Principal:
    token = _token(credentials, "API key")
    key = await session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_token(token), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        raise HTTPException(
            401,
            "invalid API key (unknown or revoked): check METALGATE_API_KEY or run `metalgate login`",
            UNAUTHORIZED,
        )
    set_actor(request, Actor("api_key", key.id, key.name, key.project_id))
    now = utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        raise HTTPException(
            401,
            f"API key {key.name} expired at {key.expires_at.isoformat()}; ask a project admin "
            "for a new one (POST /v1/projects/{id}/api-keys)",
            UNAUTHORIZED,
        )
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per key: a busy key must not turn reads into writes.
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        await session.commit()
    return Principal(
        key_id=key.id,
        project_id=key.project_id,
        role=Role(key.role),
        operator=key.operator,
        name=key.name,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _require(role: Role) -> object:
    async def check(principal: PrincipalDep) -> Principal:
        if not principal.can(role):
            raise HTTPException(
                403, f"this API key has role {principal.role}; this action needs {role} or above"
            )
        return principal

    return check


Viewer = PrincipalDep
Editor = Annotated[Principal, Depends(_require(Role.EDITOR))]
Admin = Annotated[Principal, Depends(_require(Role.ADMIN))]


async def get_operator(principal: PrincipalDep) -> Principal:
    if not principal.operator:
        raise HTTPException(403, "only the operator (bootstrap admin) key may do this")
    return principal


Operator = Annotated[Principal, Depends(get_operator)]


async def get_agent_cluster(credentials: AgentBearerDep, session: SessionDep) -> Cluster:
    """The cluster whose agent token this is; nothing else authenticates an agent."""
    token = _token(credentials, "agent token")
    cluster = await session.scalar(
        select(Cluster).where(Cluster.agent_token_hash == hash_token(token))
    )
    if cluster is None:
        raise HTTPException(401, "invalid or revoked agent token", UNAUTHORIZED)
    return cluster


AgentClusterDep = Annotated[Cluster, Depends(get_agent_cluster)]
