"""Shapes shared by every route: errors and health."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. body.spec.name")
    message: str


class ErrorBody(BaseModel):
    """Every error answer: `detail` says what is wrong and how to fix it."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class Health(BaseModel):
    status: str = "ok"
    version: str | None = Field(default=None, description="the installed metalgate version")
    instance: str | None = Field(
        default=None, description="the id a supervisor gave this process (metalgate up)"
    )


class Readiness(BaseModel):
    status: str = Field(description="ready when the store answers")
    store: str
    temporal: str = Field(description="ok or unreachable; reads work without it")
    control_plane_pollers: int | None = Field(
        default=None,
        description="control-plane workers polling their queue (workflow tasks) within the "
        "last 70 s; null when Temporal does not answer",
    )
