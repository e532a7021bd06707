"""The stack as the benchmarks run it: `start_stack` on free ports in a temporary data dir.

Also a small async API client, because the CLI's client is synchronous and the benchmarks
drive thousands of requests at once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from bench.common import python_module, spawn, stop_process
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from runtime.settings import Settings
from store.db import create_engine
from store.models import AgentOutboxRow, Cluster
from store.secrets import hash_token
from store.types import utcnow
from tests.support.ports import free_port


def free_ports() -> StackPorts:
    return StackPorts(
        temporal=free_port(),
        ui=free_port(),
        api=free_port(),
        maas=free_port(),
        agent_runtime=free_port(),
    )


@dataclass
class BenchStack:
    stack: Stack
    fleet: subprocess.Popen[bytes] | None = None

    def process_pids(self) -> dict[str, int]:
        """Every stack child, the fleet, and this process (its load shares the same cores)."""
        pids = {name: c.process.pid for name, c in self.stack.supervisor.children.items()}
        if self.fleet is not None:
            pids["fleet"] = self.fleet.pid
        pids["bench-client"] = os.getpid()
        return pids


@contextlib.asynccontextmanager
async def bench_stack(
    machines: int,
    *,
    fleet_heartbeat_interval: float | None = 30.0,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[BenchStack]:
    """The whole stack with an instant MAAS (zero deploy and release time).

    Deployed machines boot into the fleet simulator (its own process, instant kubeadm) in
    place of the agent runtime; `fleet_heartbeat_interval=None` runs no agents at all.
    """
    with tempfile.TemporaryDirectory(prefix="metalgate-bench-") as tmp:
        data_dir = Path(tmp)
        emulator_args: list[str] = []
        fleet = None
        if fleet_heartbeat_interval is not None:
            port = free_port()
            fleet = spawn(
                python_module(
                    "bench.fleet_host",
                    "--port",
                    str(port),
                    "--heartbeat-interval",
                    str(fleet_heartbeat_interval),
                ),
                data_dir / "logs" / "fleet.log",
            )
            emulator_args = ["--boot-hook-url", f"http://127.0.0.1:{port}/hooks"]
        config = StackConfig(
            data_dir=data_dir,
            ports=free_ports(),
            maas_machines=machines,
            deploy_seconds=0.0,
            release_seconds=0.0,
            emulator_args=emulator_args,
            system_gateway=False,
            agent_runtime=False,
            extra_env=extra_env or {},
        )
        try:
            stack = await start_stack(config)
            try:
                yield BenchStack(stack, fleet)
            finally:
                await stack.stop()
        finally:
            if fleet is not None:
                stop_process(fleet)


class BenchApi:
    """The few API calls the benchmarks make, with the stack's admin key."""

    def __init__(self, stack: Stack, max_connections: int = 100) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(
            base_url=stack.info.api_url,
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=60.0,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    async def create_account(self) -> str:
        """A cloud account for the stack's emulator, reached through the local PCG."""
        body = {
            "name": f"bench-{secrets.token_hex(3)}",
            "maas_url": self.stack.info.maas_url,
            "maas_api_key": self.stack.maas_key,
            "gateway_id": self.stack.info.pcg_gateway_id,
        }
        account = await self._json("POST", "/v1/cloud-accounts", json=body)
        return str(account["id"])

    async def create_cluster(self, name: str, account_id: str, workers: int = 2) -> str:
        body = {
            "name": name,
            "cloud_account_id": account_id,
            "control_plane": {"name": "control-plane", "count": 1},
            "worker_pools": [{"name": "workers", "count": workers}],
        }
        cluster = await self._json("POST", "/v1/clusters", json=body)
        return str(cluster["id"])

    async def delete_cluster(self, cluster_id: str) -> None:
        await self._json("DELETE", f"/v1/clusters/{cluster_id}")

    async def count(self, phase: str) -> int:
        page = await self._json("GET", "/v1/clusters", params={"phase": phase, "limit": 1})
        return int(page["total"])


def _maas_auth(key: str) -> str:
    consumer, token, secret = key.split(":")
    return (
        f'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
        f'oauth_consumer_key="{consumer}", oauth_token="{token}", '
        f'oauth_signature="&{secret}", oauth_nonce="{secrets.token_hex(8)}", '
        f'oauth_timestamp="{int(time.time())}"'
    )


async def machine_statuses(stack: Stack) -> Counter[str]:
    """How many emulator machines are in each MAAS status, read through the MAAS API."""
    async with httpx.AsyncClient(timeout=60.0) as http:
        response = await http.get(
            f"{stack.info.maas_url}api/2.0/machines/",
            headers={"Authorization": _maas_auth(stack.maas_key)},
        )
        response.raise_for_status()
        return Counter(str(m["status_name"]) for m in response.json())


async def seed_clusters(stack: Stack, project_id: str, cluster_ids: list[str]) -> None:
    """Running clusters with agent tokens (`token-<id>`), as the create saga leaves them."""
    url = Settings(data_dir=stack.config.data_dir).resolved_database_url()
    await seed_cluster_rows(url, project_id, cluster_ids, stack.info.pcg_gateway_id or "system")


async def seed_cluster_rows(
    database_url: str, project_id: str, cluster_ids: list[str], gateway_id: str
) -> None:
    """`seed_clusters` on any store: Running clusters written straight into its tables."""
    engine = create_engine(database_url)
    spec = {"name": "x", "worker_pools": []}
    rows = [
        {
            "id": cid,
            "project_id": project_id,
            "name": cid,
            "active_name": cid,
            "cloud_account_id": "bench",
            "gateway_id": gateway_id,
            "spec": {**spec, "name": cid},
            "phase": "Running",
            "message": "",
            "conditions": [],
            # Agents may report only their cluster's recorded machines.
            "machines": [{"system_id": f"{cid}-cp", "hostname": f"{cid}-cp", "pool": "cp"}],
            "kubernetes_version": "v1.30.4",
            "agent_token_hash": hash_token(f"token-{cid}"),
            # Heard from just now, as a running cluster would be: the silence sweep leaves it.
            "last_heartbeat_at": utcnow(),
            "silent": False,
        }
        for cid in cluster_ids
    ]
    try:
        async with engine.begin() as conn:
            for at in range(0, len(rows), 1000):
                await conn.execute(insert(Cluster), rows[at : at + 1000])
    finally:
        await engine.dispose()


async def outbox_backlog(stack: Stack) -> int:
    """Clusters whose agent changes the API has not signalled yet."""
    engine = create_engine(Settings(data_dir=stack.config.data_dir).resolved_database_url())
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(AgentOutboxRow)) or 0)
    finally:
        await engine.dispose()
