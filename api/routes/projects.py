"""Projects (operator key) and their API keys (project admins)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.auth import new_api_key
from api.deps import Admin, Operator, SessionDep, Viewer
from api.errors import responses
from api.schemas.projects import ApiKeyCreate, ApiKeyCreated, ProjectCreate, ProjectPublic, Role
from store.models import ApiKey, Project
from store.secrets import hash_token, new_id

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def _public(project: Project) -> ProjectPublic:
    return ProjectPublic(id=project.id, name=project.name, created_at=project.created_at)


@router.post(
    "",
    status_code=201,
    response_model=ProjectPublic,
    responses=responses(409),
)
async def create_project(body: ProjectCreate, _: Operator, session: SessionDep) -> ProjectPublic:
    project = Project(id=new_id("prj"), name=body.name)
    session.add(project)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            409, f"name: a project named {body.name!r} exists; pick another name"
        ) from exc
    return _public(project)


@router.get("", response_model=list[ProjectPublic], responses=responses())
async def list_projects(principal: Viewer, session: SessionDep) -> list[ProjectPublic]:
    """The operator sees every project; any other key sees its own."""
    query = select(Project).order_by(Project.created_at)
    if not principal.operator:
        query = query.where(Project.id == principal.project_id)
    return [_public(p) for p in (await session.scalars(query)).all()]


@router.post(
    "/{project_id}/api-keys", status_code=201, response_model=ApiKeyCreated, responses=responses()
)
async def create_api_key(
    project_id: str, body: ApiKeyCreate, principal: Admin, session: SessionDep
) -> ApiKeyCreated:
    """The key is in this answer only; the store keeps its hash."""
    if not principal.operator and project_id != principal.project_id:
        raise HTTPException(404, f"no project {project_id!r}")
    if await session.get(Project, project_id) is None:
        raise HTTPException(404, f"no project {project_id!r}")
    key = new_api_key()
    row = ApiKey(
        id=new_id("key"),
        project_id=project_id,
        name=body.name,
        role=body.role.value,
        operator=False,
        key_hash=hash_token(key),
    )
    session.add(row)
    await session.commit()
    return ApiKeyCreated(
        id=row.id,
        project_id=project_id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        key=key,
    )
