"""Audit log entries as admins see them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor_kind: Literal["api_key", "gateway", "anonymous"]
    actor_id: str | None = Field(description="API key id or gateway id")
    actor_name: str | None
    project_id: str | None
    action: str = Field(description="method and route, e.g. `DELETE /v1/clusters/{cluster_id}`")
    target: str = Field(description="the ids in the path, e.g. `cluster_id=cl_...`")
    outcome: Literal["ok", "refused", "rejected", "error"]
    status_code: int
    request_id: str = Field(description="also in the answer's X-Request-ID header")


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next_before: int | None = Field(
        default=None, description="pass as `before` for the next (older) page; None: last page"
    )
