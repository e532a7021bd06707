"""Every error is `{"detail": "...", "errors": [...]}` naming the field and the fix; no 500 on input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from api.schemas.common import ErrorBody
from api.temporal_gate import TemporalUnavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown field; remove it (see the schema at /docs)"
    if kind == "missing":
        return "field required; add it"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a JSON integer such as 3 (not true/false, a string or a fraction)"
    if kind == "string_too_long":
        return f"{msg}; shorten it"
    return msg.removeprefix("Value error, ")


class FieldRefused(StarletteHTTPException):
    """A refusal of one field's value, answered like a validation error: the field and the fix."""

    def __init__(self, field: str, message: str, status_code: int = 422) -> None:
        super().__init__(status_code, f"invalid request: {field}: {message}")
        self.errors = [{"field": field, "message": message}]


def validation_body(errors: list[dict[str, Any]] | Any) -> dict[str, Any]:
    items = [{"field": _field(e.get("loc", ())), "message": _message(e)} for e in errors]
    summary = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
    return {"detail": f"invalid request: {summary}", "errors": items}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "errors": getattr(exc, "errors", [])},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_down(_: Request, exc: TemporalUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "errors": []}, status_code=503)

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            detail = f"Temporal is unavailable ({exc.message}); retry when it is back"
            return JSONResponse({"detail": detail, "errors": []}, status_code=503)
        log.exception("unexpected Temporal error")
        return JSONResponse({"detail": "internal error talking to Temporal"}, status_code=500)

    @app.exception_handler(OperationalError)
    async def _store_busy(_: Request, exc: OperationalError) -> JSONResponse:
        # SQLite answers "database is locked" under write contention; the store may be down.
        log.warning("store unavailable: %s", exc.orig)
        detail = "the store is busy or unreachable; retry shortly"
        return JSONResponse({"detail": detail, "errors": []}, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal error; see the API logs"}, status_code=500)


class BodyLimit:
    """Refuses bodies over MAX_BODY_BYTES with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # FastAPI re-raises HTTPException from body parsing, so this becomes a 413.
                    raise StarletteHTTPException(413, _too_large_detail(self.limit))
            return message

        await self.app(scope, limited, send)


def _too_large_detail(limit: int) -> str:
    return f"request body over {limit} bytes; send a smaller body"


async def _too_large(send: Send, limit: int) -> None:
    response = JSONResponse(
        {"detail": _too_large_detail(limit), "errors": []},
        status_code=413,
    )
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route documents."""
    return {code: {"model": ErrorBody} for code in (401, 403, 404, *codes)}
