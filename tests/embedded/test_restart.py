"""A restarted stack finds the world it left: Running clusters keep their agents."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(300)

EXAMPLE_SPEC = Path(__file__).parents[2] / "examples" / "cluster.yaml"


def api(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.info.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30.0,
    )


async def cluster(stack: Stack, cluster_id: str) -> dict[str, Any]:
    async with api(stack) as http:
        response = await http.get(f"/v1/clusters/{cluster_id}")
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


async def agents(stack: Stack) -> list[dict[str, Any]]:
    url = f"http://{stack.config.host}:{stack.config.ports.agent_runtime}/agents"
    async with httpx.AsyncClient(timeout=10.0) as http:
        listed: list[dict[str, Any]] = (await http.get(url)).json()["agents"]
        return listed


async def until(check: Any, seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(1.0)


async def test_running_cluster_keeps_its_agents_across_a_restart(tmp_path: Path) -> None:
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=StackPorts(
            temporal=free_port(),
            ui=free_port(),
            api=free_port(),
            maas=free_port(),
            agent_runtime=free_port(),
        ),
        maas_machines=4,
        deploy_seconds=1.0,
        release_seconds=0.5,
    )
    stack = await start_stack(config)
    try:
        async with api(stack) as http:
            account = await http.post(
                "/v1/cloud-accounts",
                json={
                    "name": "emulator",
                    "maas_url": stack.info.maas_url,
                    "maas_api_key": stack.maas_key,
                    "gateway_id": stack.info.pcg_gateway_id,
                },
            )
            account.raise_for_status()
            spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
            spec["worker_pools"][0]["count"] = 1
            created = await http.post(
                "/v1/clusters", json={**spec, "cloud_account_id": account.json()["id"]}
            )
            created.raise_for_status()
        cluster_id = created.json()["id"]

        async def running() -> bool:
            return (await cluster(stack, cluster_id))["phase"] == "Running"

        await until(running, 150, "the cluster to be Running")
        before = {a["system_id"] for a in await agents(stack) if a["cluster_id"] == cluster_id}
        assert len(before) == 2
    finally:
        await stack.stop()

    stopped_at = datetime.now().astimezone()
    stack = await start_stack(config)
    try:

        async def agents_back() -> bool:
            back = {a["system_id"] for a in await agents(stack) if a["cluster_id"] == cluster_id}
            return back == before

        await until(agents_back, 30, "the cluster's agents to come back")

        async def heartbeats_resumed() -> bool:
            seen = (await cluster(stack, cluster_id))["last_heartbeat_at"]
            return seen is not None and datetime.fromisoformat(seen) > stopped_at

        await until(heartbeats_resumed, 60, "a heartbeat after the restart")
        now = await cluster(stack, cluster_id)
        assert now["phase"] == "Running"
        assert not now["agent_silent"]
    finally:
        await stack.stop()
