"""Liveness and readiness. Ready means the store answers; Temporal and the control-plane
workers are reported, not required."""

from __future__ import annotations

import importlib.metadata
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType

from api.gateway_status import queue_pollers
from api.schemas.common import Health, Readiness
from api.temporal_gate import TemporalGate, TemporalUnavailable
from domain.naming import CONTROL_PLANE_QUEUE

router = APIRouter(tags=["health"])

try:  # `metalgate doctor` compares it with its own and the gateways' versions
    _VERSION: str | None = importlib.metadata.version("metalgate")
except importlib.metadata.PackageNotFoundError:
    _VERSION = None


@router.get("/healthz", response_model=Health, response_model_exclude_none=True)
async def healthz() -> Health:
    # The supervisor's instance id proves to it that this answer comes from its own child.
    return Health(instance=os.environ.get("METALGATE_INSTANCE_ID"), version=_VERSION)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.db.sessions() as session:
            await session.execute(text("SELECT 1"))
        store = "ok"
    except Exception:
        store = "unreachable"
    gate: TemporalGate = request.app.state.temporal
    try:
        client = await gate.client()
        await client.service_client.check_health()
        temporal = "ok"
    except (TemporalUnavailable, Exception):
        temporal = "unreachable"
    # Lifecycle workflows run only while a control-plane worker takes their workflow tasks.
    pollers = None
    if temporal == "ok":
        pollers = await queue_pollers(
            gate, CONTROL_PLANE_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        )
    ready = Readiness(
        status="ready" if store == "ok" else "not ready",
        store=store,
        temporal=temporal,
        control_plane_pollers=pollers.live if pollers is not None else None,
    )
    return JSONResponse(ready.model_dump(), status_code=200 if store == "ok" else 503)
