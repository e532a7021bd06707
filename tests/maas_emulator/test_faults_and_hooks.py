"""Run-time faults through `/_emulator/faults`, admin endpoint auth, and the HTTP boot hook."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from maas.client.bones import CallError

from maas_emulator.config import EmulatorConfig
from tests.maas_emulator.conftest import StartEmulator, running_emulator


async def test_503_and_latency_at_run_time(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    client = await emu.client()
    await emu.admin("PUT", "faults", {"http_503_rate": 1.0})
    with pytest.raises(CallError) as caught:
        await client.machines.list()
    assert caught.value.status == 503
    faults = await emu.admin("PUT", "faults", {"http_503_rate": 0.0, "latency_ms": 150})
    assert faults["latency_ms"] == 150 and faults["http_503_rate"] == 0.0
    started = time.monotonic()
    await client.machines.list()
    assert time.monotonic() - started >= 0.15
    assert (await emu.admin("GET", "faults"))["latency_ms"] == 150


async def test_admin_endpoints_need_the_admin_key(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=0)
    user_key = await emu.new_user("dave")
    async with aiohttp.ClientSession() as session:
        url = emu.root + "_emulator/faults"
        async with session.get(url) as r:
            assert r.status == 401
        async with session.get(url, headers={"Authorization": f"Bearer {user_key}"}) as r:
            assert r.status == 403
        async with session.get(url, headers={"Authorization": "Bearer x:y:z"}) as r:
            assert r.status == 401
        async with session.post(
            emu.root + "_emulator/users",
            json={"username": "dave"},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        ) as r:
            assert r.status == 409


async def test_http_boot_hook_posts_deployed_and_released(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []
    attempts = 0

    async def listener(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return web.Response(status=503)  # the hook retries
        received.append(await request.json())
        return web.Response(status=204)

    hook_app = web.Application()
    hook_app.router.add_post("/boot", listener)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    config = EmulatorConfig(
        data_dir=tmp_path,
        machines=1,
        deploy_seconds=0,
        release_seconds=0,
        boot_hook_url=f"http://{host}:{port}/boot",
    )
    try:
        async with running_emulator(config, capture_hooks=False) as emu:
            client = await emu.client()
            machine = await client.machines.allocate()
            await machine.deploy(user_data=b"#!/bin/sh\necho hi\n")
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.02)
            await machine.release()
            for _ in range(100):
                if len(received) == 2:
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    deployed, released = received
    assert deployed["event"] == "deployed" and released["event"] == "released"
    assert deployed["system_id"] == machine.system_id
    assert base64.b64decode(deployed["user_data_b64"]) == b"#!/bin/sh\necho hi\n"
    assert deployed["ip_addresses"] and deployed["hostname"] == machine.hostname
