"""Projects (operator key); their API keys are in api/routes/api_keys.py."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.deps import Operator, SessionDep, Viewer
from api.errors import responses
from api.schemas.projects import ProjectCreate, ProjectPublic
from store.models import Project
from store.secrets import new_id

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
