"""Endpoints outside the MAAS API, under `/_emulator/`, for tests and chaos runs.

`GET /_emulator/health` is anonymous; the others need the admin API key, sent either as
`Authorization: Bearer <consumer_key:token_key:token_secret>` or as a MAAS OAuth header
signed with an admin's key:

- `GET /_emulator/faults`: the current faults.
- `PUT|POST /_emulator/faults`: JSON with any of `deploy_failure_rate`, `fail_machines`,
  `dead_machines`, `http_503_rate`, `latency_ms`; answers the faults now in force.
- `POST /_emulator/boot-deployed`: re-run every Deployed machine's boot hook (a power-on);
  answers `{"booted": N}`.
- `GET /_emulator/requests?since=N`: the request log (`maas_emulator.requests`): calls per
  handler and action since start, and the kept requests numbered above N.
- `POST /_emulator/users`: JSON `{"username": ..., "is_admin": false}`; answers 201 with
  `{"username", "is_admin", "api_key"}`, 409 if the user exists.
"""

from __future__ import annotations

import os

from aiohttp import web
from pydantic import BaseModel, ValidationError

from maas_emulator.api.routing import EMULATOR, error_response
from maas_emulator.auth import authenticate_admin, new_user
from maas_emulator.config import FaultUpdate
from maas_emulator.errors import MaasError

ADMIN_ROOT = "/_emulator/"


class UserCreate(BaseModel):
    username: str
    is_admin: bool = False


class UserCreated(BaseModel):
    username: str
    is_admin: bool
    api_key: str


async def health(request: web.Request) -> web.Response:
    state = request.app[EMULATOR].state
    # The instance id lets a supervisor tell its own emulator from another on the same port.
    return web.json_response(
        {
            "status": "ok",
            "machines": len(state.machines),
            "instance": os.environ.get("METALGATE_INSTANCE_ID"),
        }
    )


async def read_faults(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        authenticate_admin(request, emulator.state)
    except MaasError as error:
        return error_response(error)
    return web.json_response(emulator.faults.config.model_dump())


async def update_faults(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        authenticate_admin(request, emulator.state)
        change = FaultUpdate.model_validate_json(await request.read())
    except MaasError as error:
        return error_response(error)
    except ValidationError as error:
        return web.json_response({"detail": error.errors(include_url=False)}, status=400)
    return web.json_response(emulator.faults.update(change).model_dump())


async def create_user(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        authenticate_admin(request, emulator.state)
        wanted = UserCreate.model_validate_json(await request.read())
    except MaasError as error:
        return error_response(error)
    except ValidationError as error:
        return web.json_response({"detail": error.errors(include_url=False)}, status=400)
    if wanted.username in emulator.state.users:
        return web.json_response({"detail": "user exists"}, status=409)
    user = new_user(wanted.username, is_admin=wanted.is_admin)
    emulator.state.save_user(user)
    created = UserCreated(username=user.username, is_admin=user.is_admin, api_key=user.api_key)
    return web.json_response(created.model_dump(), status=201)


async def boot_deployed(request: web.Request) -> web.Response:
    """Re-run the boot hook of every Deployed machine, as if each was powered on again: the
    hook's receiver (the agent runtime) starts their agents after it restarted."""
    emulator = request.app[EMULATOR]
    try:
        authenticate_admin(request, emulator.state)
    except MaasError as error:
        return error_response(error)
    return web.json_response({"booted": emulator.lifecycle.boot_deployed()})


async def read_requests(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        authenticate_admin(request, emulator.state)
    except MaasError as error:
        return error_response(error)
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        return web.json_response({"detail": "since: a request number (integer)"}, status=400)
    return web.json_response(emulator.requests.page(since).model_dump())


def add_routes(app: web.Application) -> None:
    app.router.add_get(ADMIN_ROOT + "health", health)
    app.router.add_get(ADMIN_ROOT + "faults", read_faults)
    app.router.add_put(ADMIN_ROOT + "faults", update_faults)
    app.router.add_post(ADMIN_ROOT + "faults", update_faults)
    app.router.add_post(ADMIN_ROOT + "users", create_user)
    app.router.add_get(ADMIN_ROOT + "requests", read_requests)
    app.router.add_post(ADMIN_ROOT + "boot-deployed", boot_deployed)
