"""Assembles the emulator into an aiohttp application.

In process:

    app = build_app(EmulatorConfig(data_dir=tmp, machines=20), hook=my_hook)
    runner = web.AppRunner(app); await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = admin_api_key(app)

As a process: `python -m maas_emulator --port 5240 --data-dir DIR ...` (or
`metalgate maas-emulator ...`); `GET /_emulator/health` answers once it listens.
"""

from __future__ import annotations

import json
import logging
import random

from aiohttp import web

from maas_emulator import admin
from maas_emulator.api import RESOURCES
from maas_emulator.api.routing import API_ROOT, EMULATOR
from maas_emulator.auth import new_user
from maas_emulator.config import EmulatorConfig
from maas_emulator.describe import describe
from maas_emulator.emulator import Emulator
from maas_emulator.faults import Faults
from maas_emulator.hooks import HookRunner, HttpHook, MachineHook, null_hook
from maas_emulator.inventory import generate_inventory, load_inventory, seed, seed_network
from maas_emulator.models import User
from maas_emulator.state import State
from maas_emulator.statemachine import Lifecycle
from maas_emulator.store import Store

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
_DESCRIBE_CACHE = web.AppKey("describe_cache", dict)


def build_app(config: EmulatorConfig, hook: MachineHook | None = None) -> web.Application:
    """The emulator as an aiohttp app; `hook` (or `config.boot_hook_url`) sees boots/releases."""
    rng = random.Random(config.seed)
    store = Store(config.data_dir)
    state = State(store)
    if not state.machines:
        inventory = (
            load_inventory(config.inventory)
            if config.inventory is not None
            else generate_inventory(config.machines, rng)
        )
        seed(state, inventory, rng)
        log.info("seeded %d machines in %s", len(state.machines), config.data_dir)
    else:
        log.info("loaded %d machines from %s", len(state.machines), config.data_dir)
    seed_network(state)
    admin_user = _ensure_admin(state, config.api_key)
    if hook is None:
        hook = HttpHook(config.boot_hook_url) if config.boot_hook_url else null_hook
    faults = Faults(config.faults.model_copy(deep=True), rng)
    hooks = HookRunner(hook)
    lifecycle = Lifecycle(state, faults, hooks, config.deploy_seconds, config.release_seconds)

    app = web.Application()
    app[EMULATOR] = Emulator(config, state, faults, hooks, lifecycle, admin_user.api_key)
    app[_DESCRIBE_CACHE] = {}
    app.router.add_get(API_ROOT + "describe/", _describe)
    app.router.add_get("/MAAS/", _home)
    for resource in RESOURCES:
        path, handler = resource.route()
        app.router.add_route("*", path, handler)
    admin.add_routes(app)

    async def start(_: web.Application) -> None:
        lifecycle.resume()

    async def stop(_: web.Application) -> None:
        lifecycle.close()
        await hooks.close()
        store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


async def _home(_: web.Request) -> web.Response:
    # A real MAAS serves its web UI here; the emulator has none, so it says where the API is.
    return web.Response(text=f"MAAS emulator: the MAAS 2.0 REST API is at {API_ROOT}\n")


def admin_api_key(app: web.Application) -> str:
    return app[EMULATOR].admin_api_key


def _ensure_admin(state: State, api_key: str | None) -> User:
    """The admin keeps its stored key unless `api_key` names another one."""
    current = state.users.get(ADMIN_USERNAME)
    if current is not None and (api_key is None or current.api_key == api_key):
        return current
    admin_user = new_user(ADMIN_USERNAME, is_admin=True, api_key=api_key)
    state.save_user(admin_user)
    return admin_user


async def _describe(request: web.Request) -> web.Response:
    request.app[EMULATOR].requests.record("describe", "read", request.method)
    base_url = f"{request.scheme}://{request.host}"
    cache = request.app[_DESCRIBE_CACHE]
    body = cache.get(base_url)
    if body is None:
        body = cache[base_url] = json.dumps(describe(RESOURCES, base_url)).encode()
    return web.Response(body=body, content_type="application/json")


def run(config: EmulatorConfig, app: web.Application | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    web.run_app(
        app or build_app(config),
        host=config.host,
        port=config.port,
        access_log=None,
        print=None,
    )
