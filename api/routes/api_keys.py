"""A project's API keys: list, create (the secret is in that answer only), revoke.

Every request checks its key against the store (no cache), so a revoked or expired key stops
working at once on every API replica.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select

from api.auth import Principal, new_api_key
from api.deps import Admin, SessionDep
from api.errors import responses
from api.schemas.projects import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Role
from store.models import ApiKey, Project
from store.secrets import hash_token, new_id
from store.types import utcnow

router = APIRouter(prefix="/v1/projects/{project_id}/api-keys", tags=["api keys"])


def public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


async def _project(session: SessionDep, principal: Principal, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None or (not principal.operator and project_id != principal.project_id):
        raise HTTPException(404, f"no project {project_id!r}; see GET /v1/projects")
    return project


@router.get("", response_model=list[ApiKeyPublic], responses=responses())
async def list_api_keys(
    project_id: str, principal: Admin, session: SessionDep
) -> list[ApiKeyPublic]:
    """Keys that still work or have expired; revoked keys are gone. Never the secrets."""
    await _project(session, principal, project_id)
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.project_id == project_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at)
    )
    return [public(r) for r in rows.all()]


@router.post("", status_code=201, response_model=ApiKeyCreated, responses=responses())
async def create_api_key(
    project_id: str, body: ApiKeyCreate, principal: Admin, session: SessionDep
) -> ApiKeyCreated:
    """The key is in this answer only; the store keeps its hash."""
    await _project(session, principal, project_id)
    key = new_api_key()
    row = ApiKey(
        id=new_id("key"),
        project_id=project_id,
        name=body.name,
        role=body.role.value,
        operator=False,
        key_hash=hash_token(key),
        created_at=utcnow(),
        expires_at=(
            utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
        ),
    )
    session.add(row)
    await session.commit()
    return ApiKeyCreated(**public(row).model_dump(), key=key)


@router.delete("/{key_id}", status_code=204, responses=responses(409))
async def revoke_api_key(
    project_id: str, key_id: str, principal: Admin, session: SessionDep
) -> Response:
    """Revoked at once on every API replica: each request reads its key from the store."""
    await _project(session, principal, project_id)
    row = await session.get(ApiKey, key_id)
    if row is None or row.project_id != project_id or row.revoked_at is not None:
        raise HTTPException(404, f"no API key {key_id!r} in this project; see GET {router.prefix}")
    if row.operator:
        raise HTTPException(
            409,
            "the operator key cannot be revoked through the API; replace "
            "METALGATE_BOOTSTRAP_ADMIN_KEY and restart instead",
        )
    row.revoked_at = utcnow()
    await session.commit()
    return Response(status_code=204)
