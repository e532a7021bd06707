"""Handlers as MAAS declares them: a resource (URI template) with actions keyed by
(HTTP method, op). The same declarations route requests and generate `describe/`."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from maas_emulator.api.forms import read_params
from maas_emulator.auth import WWW_AUTHENTICATE, authenticate
from maas_emulator.emulator import Emulator
from maas_emulator.errors import BadRequest, MaasError, MethodNotAllowed, ServiceUnavailable
from maas_emulator.faults import LOST_AS_CUT
from maas_emulator.models import User

API_ROOT = "/MAAS/api/2.0/"
EMULATOR = web.AppKey("emulator", Emulator)


@dataclass(frozen=True)
class Call:
    """One API call as a handler sees it."""

    request: web.Request
    emulator: Emulator
    params: MultiDictProxy[str]
    path: Mapping[str, str]
    caller: User | None

    @property
    def user(self) -> User:
        assert self.caller is not None, "anonymous call to an authenticated handler"
        return self.caller


# Handlers are synchronous on purpose: with no await inside, each call is atomic on the loop.
HandlerFunc = Callable[[Call], Any]


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    op: str | None
    doc: str
    func: HandlerFunc

    @property
    def restful(self) -> bool:
        return self.op is None


@dataclass
class Resource:
    """A MAAS handler such as `MachinesHandler` at `machines/`."""

    name: str
    path: str
    doc: str
    anon: bool = False
    actions: dict[tuple[str, str | None], Action] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def action(
        self, method: str, op: str | None = None, *, name: str | None = None
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        """Declare `func` as this resource's (method, op) action; its docstring is the doc."""

        def register(func: HandlerFunc) -> HandlerFunc:
            action_name = name or op or _RESTFUL_NAMES[method]
            doc = inspect.getdoc(func) or ""
            self.actions[(method, op)] = Action(action_name, method, op, doc, func)
            return func

        return register

    def route(self) -> tuple[str, Callable[[web.Request], Any]]:
        return API_ROOT + self.path, self._handle

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        emulator = request.app[EMULATOR]
        op = request.query.get("op")
        action = self.actions.get((request.method, op))
        emulator.requests.record(
            self.name,
            action.name if action else str(op),
            request.method,
            _query(request) if request.method == "GET" else None,
        )
        try:
            caller = None
            if not self.anon:
                await _inject_faults(emulator)
                caller = authenticate(request, emulator.state)
            if action is None:
                if op is None and not any(m == request.method for m, _ in self.actions):
                    raise MethodNotAllowed(f"Method {request.method} not allowed.")
                raise BadRequest(f"Unrecognised signature: method={request.method} op={op}")
            params = await read_params(request)
            call = Call(request, emulator, params, request.match_info, caller)
            answer = respond(action.func(call))
            if request.method == "POST" and not self.anon:
                lost = emulator.faults.lose_answer()
                if lost == LOST_AS_CUT and request.transport is not None:
                    request.transport.abort()
                if lost is not None:
                    raise ServiceUnavailable("Service Unavailable (injected fault: answer lost)")
            return answer
        except MaasError as error:
            return error_response(error)


def _query(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query.keys()}


_RESTFUL_NAMES = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}


async def _inject_faults(emulator: Emulator) -> None:
    faults = emulator.faults
    if faults.latency_seconds > 0:
        await asyncio.sleep(faults.latency_seconds)
    if faults.answer_503():
        raise ServiceUnavailable("Service Unavailable (injected fault)")


def respond(result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return web.Response(body=json.dumps(result).encode(), content_type="application/json")


def error_response(error: MaasError) -> web.Response:
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if error.status == 401 else None
    if error.status == 503:
        headers = {"Retry-After": "1"}
    if isinstance(error.body, dict):
        return web.json_response(error.body, status=error.status, headers=headers)
    return web.Response(
        status=error.status, text=error.body, content_type="text/plain", headers=headers
    )
