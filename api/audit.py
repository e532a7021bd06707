"""The audit log: every mutating call and every refused one, written after the answer.

A row names who (API key id and name, gateway id, or anonymous), which project, the route
(method + path template), its target (the `*_id` path parameters), the outcome and the
request id. It never holds a body, a query string, a header or a path parameter that is not
an id, so no secret (keys, tokens, MAAS credentials) can reach it.

Heartbeats and agent reports (many per second at fleet scale) and the payload codec are
recorded only when refused: their successes change no intent and would drown the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.db import SessionFactory
from store.models import AuditEntry
from store.types import utcnow

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
QUIET_PREFIXES = ("/v1/agent/", "/codec/")
QUIET_SUFFIXES = ("/heartbeat",)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class Actor:
    kind: str  # "api_key", "gateway" or "anonymous"
    id: str | None = None
    name: str | None = None
    project_id: str | None = None


ANONYMOUS = Actor("anonymous")


def set_actor(request: Request, actor: Actor) -> None:
    """Called by authentication once it knows who is calling."""
    request.scope.setdefault("state", {})["audit_actor"] = actor


def outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "refused"
    return "rejected" if status < 500 else "error"


def _recorded(method: str, path: str, status: int) -> bool:
    if status in (401, 403):
        return True
    if method not in MUTATING:
        return False
    return not (path.startswith(QUIET_PREFIXES) or path.endswith(QUIET_SUFFIXES))


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class AuditLog:
    """ASGI middleware; a failed audit write is logged, never turned into a failed call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pruned_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        written = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, written
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Recorded before the client sees the end of the answer, so a read that
                # follows it finds the entry.
                written = True
                await self._record(scope, status, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not written:
                await self._record(scope, status, request_id)

    async def _record(self, scope: Scope, status: int, request_id: str) -> None:
        if _recorded(scope["method"], scope["path"], status):
            await self._write(scope, status, request_id)

    async def _write(self, scope: Scope, status: int, request_id: str) -> None:
        app = scope["app"]
        database = getattr(app.state, "db", None)
        if database is None:
            return
        actor: Actor = scope.get("state", {}).get("audit_actor", ANONYMOUS)
        route = scope.get("route")
        template = getattr(route, "path", None) or "(no route)"
        params: dict[str, Any] = scope.get("path_params", {})
        target = " ".join(f"{k}={v}" for k, v in sorted(params.items()) if k.endswith("_id"))
        project = params.get("project_id") if actor.kind == "api_key" else None
        entry = AuditEntry(
            at=utcnow(),
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_name=actor.name,
            project_id=project or actor.project_id,
            action=f"{scope['method']} {template}"[:120],
            target=target[:255],
            outcome=outcome(status),
            status_code=status,
            request_id=request_id,
        )
        try:
            async with database.sessions.begin() as session:
                session.add(entry)
            await self._prune(database.sessions, app.state.settings.audit_retention_days)
        except Exception:
            log.exception("audit: could not record %s (request %s)", entry.action, request_id)

    async def _prune(self, sessions: SessionFactory, retention_days: float) -> None:
        """Drop rows past the retention, at most once an hour per process."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        async with sessions.begin() as session:
            await prune_audit(session, retention_days)


async def prune_audit(session: Any, retention_days: float) -> int:
    cutoff = utcnow() - timedelta(days=retention_days)
    result = await session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(result.rowcount or 0)
