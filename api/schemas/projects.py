"""Projects and their API keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.cluster import DNS_LABEL


class Role(StrEnum):
    """admin: everything in the project incl. keys; editor: create/delete/act; viewer: read."""

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)


class ProjectPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    role: Role = Role.VIEWER
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="the key stops working after this; None: never"
    )


class ApiKeyPublic(BaseModel):
    id: str
    project_id: str
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = Field(
        default=None, description="to the minute: uses are recorded at most once a minute"
    )
    expires_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    """The only answer that carries the key itself: it is stored hashed and never shown again."""

    key: str
