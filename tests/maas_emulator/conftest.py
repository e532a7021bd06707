"""Each test gets its own emulator on a free loopback port, driven through python-libmaas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import maas.client
import pytest
from aiohttp import web
from maas.client.bones import SessionAPI
from maas.client.utils.creds import Credentials

from maas_emulator.config import EmulatorConfig
from maas_emulator.hooks import HookEvent
from maas_emulator.inventory import Inventory, MachineSpec
from maas_emulator.server import admin_api_key, build_app


@dataclass
class Running:
    url: str
    api_key: str
    app: web.Application
    hook_events: list[HookEvent] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.url.removesuffix("MAAS/")

    async def client(self, api_key: str | None = None) -> Any:
        return await maas.client.connect(self.url, apikey=api_key or self.api_key)

    async def bones(self, api_key: str | None = None) -> SessionAPI:
        credentials = Credentials.parse(api_key or self.api_key)
        return await SessionAPI.fromURL(self.url + "api/2.0/", credentials=credentials)

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.root + "_emulator/" + path, json=body, headers=headers
            ) as r,
        ):
            r.raise_for_status()
            return await r.json()

    async def new_user(self, username: str) -> str:
        created = await self.admin("POST", "users", {"username": username})
        return str(created["api_key"])


StartEmulator = Callable[..., Awaitable[Running]]


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig, capture_hooks: bool = True
) -> AsyncIterator[Running]:
    """With `capture_hooks`, hook events land in `Running.hook_events` (else the config's hook)."""
    events: list[HookEvent] = []

    async def hook(event: HookEvent) -> None:
        events.append(event)

    app = build_app(config, hook=hook if capture_hooks else None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Running(f"http://{host}:{port}/MAAS/", admin_api_key(app), app, events)
    finally:
        await runner.cleanup()


@pytest.fixture
async def start_emulator(tmp_path: Path) -> AsyncIterator[StartEmulator]:
    """`await start_emulator(machines=..., deploy_seconds=..., inventory=Inventory(...))`."""
    stack: list[Any] = []

    async def start(inventory: Inventory | None = None, **fields: Any) -> Running:
        data_dir = tmp_path / f"emulator{len(stack)}"
        if inventory is not None:
            data_dir.mkdir()
            fields["inventory"] = data_dir / "inventory.json"
            fields["inventory"].write_text(inventory.model_dump_json())
        fields.setdefault("deploy_seconds", 0)
        fields.setdefault("release_seconds", 0)
        fields.setdefault("seed", 7)
        context = running_emulator(EmulatorConfig(data_dir=data_dir, **fields))
        stack.append(context)
        return await context.__aenter__()

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


def machines(count: int, **spec: Any) -> list[MachineSpec]:
    prefix = spec.pop("prefix", "node")
    return [MachineSpec(hostname=f"{prefix}{i:03d}", **spec) for i in range(count)]
