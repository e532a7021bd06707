"""A real MAAS emulator per test, on a free loopback port, with a known inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from maas.client.bones import SessionAPI
from temporalio.testing import WorkflowEnvironment

from domain.maas import MaasAccount
from maas_emulator.config import EmulatorConfig
from maas_emulator.inventory import Inventory, MachineSpec
from maas_emulator.requests import RequestLogPage
from maas_emulator.server import admin_api_key, build_app
from tests.support.frontdoor import FrontDoorForGateways, frontdoor_for_gateways
from tests.support.ports import free_port

# Six plain machines, two big GPU ones in zone-a / pool gpu.
DEFAULT_INVENTORY = Inventory(
    zones=["default", "zone-a"],
    pools=["default", "gpu"],
    tags=["gpu", "ssd"],
    machines=[
        *(MachineSpec(hostname=f"node{i:02d}", cpu_count=4, memory=8192) for i in range(1, 7)),
        *(
            MachineSpec(
                hostname=f"gpu{i:02d}",
                cpu_count=32,
                memory=65536,
                zone="zone-a",
                pool="gpu",
                tags=["gpu"],
            )
            for i in range(1, 3)
        ),
    ],
)


@dataclass
class Maas:
    url: str
    account: MaasAccount

    async def bones(self) -> Any:
        _profile, session = await SessionAPI.connect(self.url, apikey=self.account.api_key)
        return session

    async def machines(self) -> list[dict[str, Any]]:
        session = await self.bones()
        return list(await session.Machines.read())

    async def by_hostname(self, hostname: str) -> dict[str, Any]:
        return next(m for m in await self.machines() if m["hostname"] == hostname)

    async def _admin(self, path: str, body: dict[str, Any], method: str = "POST") -> Any:
        async with httpx.AsyncClient() as http:
            response = await http.request(
                method,
                self.url.replace("/MAAS/", f"/_emulator/{path}"),
                json=body,
                headers={"Authorization": f"Bearer {self.account.api_key}"},
            )
            response.raise_for_status()
            return response.json()

    async def requests(self, since: int = 0) -> RequestLogPage:
        """The emulator's request log: counts since start, and the requests after `since`."""
        return RequestLogPage.model_validate(
            await self._admin(f"requests?since={since}", {}, method="GET")
        )

    async def set_faults(self, **faults: Any) -> None:
        await self._admin("faults", faults, method="PUT")

    async def user_account(self, username: str) -> MaasAccount:
        """A MAAS account for a new non-admin user (cannot manage tags)."""
        created = await self._admin("users", {"username": username, "is_admin": False})
        return MaasAccount(url=self.url, api_key=created["api_key"])


StartMaas = Callable[..., Awaitable[Maas]]


@pytest.fixture
async def start_maas(tmp_path: Path) -> AsyncIterator[StartMaas]:
    """Start emulators with `await start_maas(inventory=..., deploy_seconds=...)`."""
    runners: list[web.AppRunner] = []

    async def start(inventory: Inventory = DEFAULT_INVENTORY, **fields: Any) -> Maas:
        data_dir = tmp_path / f"maas{len(runners)}"
        data_dir.mkdir()
        inventory_file = data_dir / "inventory.json"
        inventory_file.write_text(inventory.model_dump_json())
        fields = {"deploy_seconds": 0.3, "release_seconds": 0.1, "seed": 1, **fields}
        config = EmulatorConfig(data_dir=data_dir, inventory=inventory_file, **fields)
        app = build_app(config)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        url = f"http://127.0.0.1:{port}/MAAS/"
        return Maas(url=url, account=MaasAccount(url=url, api_key=admin_api_key(app)))

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def maas(start_maas: StartMaas) -> Maas:
    return await start_maas()


@pytest.fixture(scope="session")
async def frontdoor(
    env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FrontDoorForGateways]:
    """Gateways under test connect through a real front door, as in production."""
    async with frontdoor_for_gateways(
        tmp_path_factory.mktemp("frontdoor"),
        env.client.service_client.config.target_host,
        env.client.namespace,
    ) as door:
        yield door
