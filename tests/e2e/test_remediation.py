"""The remediation ladder on the stack `metalgate up` starts: an emulator machine dies under a
Running cluster, and the cluster repairs itself.

The worker's machine is powered off through MAAS and its hardware made dead (the emulator's
`dead_machines` fault), so its agent stops and neither a power cycle nor a redeploy brings it
back: the ladder power-cycles it, redeploys it (which fails), and a fresh machine takes its
place; the old one ends released and tagged for quarantine, as MAAS itself shows. Short
settings keep it quick: heartbeats every second, a node silent after 6 s, a 2 s threshold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import maas.client
import pytest

from cli.api_client import ApiClient
from cli.demo import kill_machine
from domain.cluster import ClusterSpec, NodePool, RemediationPolicy
from domain.naming import OWNER_DATA_CLUSTER, QUARANTINE_TAG
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(300)

Json = dict[str, Any]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(), ui=free_port(), api=free_port(), maas=free_port(),
        agent_runtime=free_port(),
    )  # fmt: skip
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=ports,
        maas_machines=4,
        deploy_seconds=1.0,
        release_seconds=0.5,
        agent_runtime_args=["--heartbeat-interval", "1"],
        extra_env={"METALGATE_AGENT_NODE_SILENCE_TIMEOUT": "6"},
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


def wait_for(what: str, check: Callable[[], Json | None], within: float = 90.0) -> Json:
    deadline = time.monotonic() + within
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"no {what} within {within:.0f}s"
        time.sleep(0.5)
    return found


async def maas_machine(stack: Stack, system_id: str) -> tuple[str, list[str], Json]:
    client = await maas.client.connect(stack.info.maas_url, apikey=stack.maas_key)
    machine = await client.machines.get(system_id)
    return machine.status_name, [t.name for t in machine.tags], dict(machine.owner_data or {})


def test_a_dead_worker_is_replaced_and_its_machine_quarantined(stack: Stack) -> None:
    with ApiClient(stack.info.api_url, stack.admin_key) as api:
        account = api.create_account(
            name="emulator",
            maas_url=stack.info.maas_url,
            maas_api_key=stack.maas_key,
            gateway_id=stack.info.pcg_gateway_id,
        )
        quick = RemediationPolicy(unhealthy_seconds=2)
        spec = ClusterSpec(
            name="heals-itself",
            control_plane=NodePool(name="control-plane", count=1),
            worker_pools=[NodePool(name="workers", count=1, remediation=quick)],
        )
        cluster_id = api.create_cluster(spec, cloud_account_id=account["id"])["id"]

        def running() -> Json | None:
            cluster = api.get_cluster(cluster_id)
            return cluster if cluster["phase"] == "Running" else None

        cluster = wait_for("Running cluster", running)
        [old] = [m for m in cluster["machines"] if m["pool"] == "workers"]
        asyncio.run(kill_machine(stack.info.maas_url, stack.maas_key, old["system_id"]))

        def replaced() -> Json | None:
            cluster = api.get_cluster(cluster_id)
            workers = [m for m in cluster["machines"] if m["pool"] == "workers"]
            nodes = {n["hostname"]: n for n in cluster["nodes"]}
            fresh = [m for m in workers if m["system_id"] != old["system_id"]]
            if cluster["phase"] != "Running" or len(workers) != 1 or not fresh:
                return None
            node = nodes.get(fresh[0]["hostname"])
            return cluster if node is not None and node["ready"] else None

        after = wait_for("replacement Ready", replaced)
        events = [e["message"] for e in api.cluster_events(cluster_id)]

    [fresh] = [m for m in after["machines"] if m["pool"] == "workers"]
    ladder = [e for e in events if "remediat" in e and old["hostname"] in e]
    assert any("power-cycle of" in e and "agent silent" in e for e in ladder), events
    assert any("redeploy of" in e and "replaced by" in e for e in ladder), events
    # MAAS itself: the old machine is back in the pool, tagged out of later allocations.
    status, tags, owner = asyncio.run(maas_machine(stack, old["system_id"]))
    assert (status, owner) == ("Ready", {}) and QUARANTINE_TAG in tags
    status, tags, owner = asyncio.run(maas_machine(stack, fresh["system_id"]))
    assert status == "Deployed" and owner.get(OWNER_DATA_CLUSTER) == cluster_id
    assert QUARANTINE_TAG not in tags
