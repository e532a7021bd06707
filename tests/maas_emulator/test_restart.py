"""State survives a kill -9 of the emulator process; a machine caught deploying finishes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import maas.client
from maas.client.enum import NodeStatus

API_KEY = "restartconsumer:restarttoken:restartsecret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def spawn(data_dir: Path, port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "maas_emulator",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--api-key",
        API_KEY,
        "--machines",
        "4",
        "--deploy-seconds",
        "1.5",
        "--release-seconds",
        "0",
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/_emulator/health") as r:
                    if r.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("emulator did not start")


async def test_state_survives_kill_minus_9(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/MAAS/"
    process = await spawn(tmp_path, port)
    try:
        client = await maas.client.connect(url, apikey=API_KEY)
        kept = await client.machines.allocate(agent_name="keep", comment="before crash")
        kept.owner_data["cluster"] = "c1"
        await kept.save()
        deploying = await (await client.machines.allocate()).deploy(user_data=b"boot")
        assert deploying.status == NodeStatus.DEPLOYING
        before = {m.system_id: (m.hostname, m.status) for m in await client.machines.list()}
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()

    process = await spawn(tmp_path, port)
    try:
        client = await maas.client.connect(url, apikey=API_KEY)
        after = {m.system_id: m for m in await client.machines.list()}
        assert {k: v.hostname for k, v in after.items()} == {k: v[0] for k, v in before.items()}
        survivor = after[kept.system_id]
        assert survivor.status == NodeStatus.ALLOCATED
        assert survivor.owner.username == "admin" and survivor.owner_data == {"cluster": "c1"}
        for _ in range(60):
            finished = await client.machines.get(deploying.system_id)
            if finished.status != NodeStatus.DEPLOYING:
                break
            await asyncio.sleep(0.1)
        assert finished.status == NodeStatus.DEPLOYED and finished.ip_addresses
        events = await client.events.query(system_ids=[kept.system_id])
        assert [e.description for e in events] == ["From 'Ready' to 'Allocated': before crash"]
    finally:
        process.terminate()
        await process.wait()
