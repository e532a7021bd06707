"""`GET /v1/audit`: who did what, newest first, filtered and paged (project admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from api.deps import Admin, SessionDep
from api.errors import responses
from api.schemas.audit import AuditPage, AuditPublic
from store.models import AuditEntry

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, responses=responses())
async def list_audit(
    principal: Admin,
    session: SessionDep,
    project_id: Annotated[
        str | None, Query(description="the operator key may name any project; others get theirs")
    ] = None,
    actor_id: str | None = None,
    action: Annotated[
        str | None, Query(description="prefix of the action, e.g. `DELETE /v1/clusters`")
    ] = None,
    outcome: Literal["ok", "refused", "rejected", "error"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="`next_before` of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    if not principal.operator:
        if project_id not in (None, principal.project_id):
            raise HTTPException(404, f"no project {project_id!r}; see GET /v1/projects")
        project_id = principal.project_id
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-01T00:00:00Z")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if outcome is not None:
        query = query.where(AuditEntry.outcome == outcome)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditPublic.model_validate(r, from_attributes=True) for r in rows],
        next_before=rows[-1].id if more and rows else None,
    )
