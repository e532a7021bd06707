"""examples/cluster-ha.yaml on the stack `metalgate up` starts: 3 control-plane nodes and 2
workers reach Running through the simulated backend behind a VIP (and, second, behind a MAAS
DNS record, whose control plane is then repaved node by node with the record following),
and a delete leaves no reserved IP, DNS record or machine of theirs in MAAS.

MAAS is read through the unmodified python-libmaas: its `bones` session for `ipaddresses/`
and `dnsresources/` (it has no objects for them), its objects for machines.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import maas.client
import pytest
import yaml
from maas.client.bones import SessionAPI
from maas.client.utils.creds import Credentials

from domain.naming import OWNER_DATA_CLUSTER, OWNER_DATA_POOL, endpoint_record_name
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.cli.conftest import Cli
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(480)

HA_SPEC = Path(__file__).parents[2] / "examples" / "cluster-ha.yaml"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(), ui=free_port(), api=free_port(), maas=free_port(),
        agent_runtime=free_port(),
    )  # fmt: skip
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("ha-stack"),
        ports=ports,
        maas_machines=6,
        deploy_seconds=1.0,
        release_seconds=0.5,
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture(scope="module")
def account(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    cli = Cli(stack.info.api_url, stack.admin_key, tmp_path_factory.mktemp("cli"))
    assert stack.info.pcg_gateway_id is not None
    created = cli.json(
        "account", "create", "--name", "emulator", "--maas-url", stack.info.maas_url,
        "--maas-api-key-file", stack.info.maas_api_key_file,
        "--gateway", stack.info.pcg_gateway_id,
    )  # fmt: skip
    return cli, created["id"]


async def maas_view(stack: Stack) -> dict[str, Any]:
    """What MAAS holds: reserved IPs, DNS names, and each owned machine's cluster/pool/IPs."""
    session = await SessionAPI.fromURL(
        stack.info.maas_url + "api/2.0/", credentials=Credentials.parse(stack.maas_key)
    )
    client = await maas.client.connect(stack.info.maas_url, apikey=stack.maas_key)
    machines = [(m.owner_data or {}, list(m.ip_addresses)) for m in await client.machines.list()]
    return {
        "reserved": [a["ip"] for a in await session.IPAddresses.read()],
        "records": {
            r["fqdn"]: sorted(a["ip"] for a in r["ip_addresses"])
            for r in await session.DNSResources.read()
        },
        "subnets": [s.cidr for s in await client.subnets.list()],
        "owned": [(d.get(OWNER_DATA_CLUSTER), d.get(OWNER_DATA_POOL), ips) for d, ips in machines],
    }


def create(cli: Cli, account_id: str, spec: Path) -> dict[str, Any]:
    cli.run(
        "cluster", "create", "-f", str(spec), "--account", account_id, "--wait",
        "--timeout", "240",
    )  # fmt: skip
    name = yaml.safe_load(spec.read_text())["name"]
    (cluster,) = [c for c in cli.json("cluster", "list", "--phase", "Running") if c["name"] == name]
    assert len(cluster["machines"]) == 5
    return cluster


def delete_leaves_nothing(cli: Cli, stack: Stack, cluster_id: str) -> None:
    final = cli.json("cluster", "delete", cluster_id, "--wait", "--timeout", "120")
    assert final.get("phase", "Deleted") == "Deleted"
    after = asyncio.run(maas_view(stack))
    assert after["reserved"] == []
    assert not [f for f in after["records"] if f.startswith(endpoint_record_name(cluster_id))]
    assert not [o for o in after["owned"] if o[0] == cluster_id]


def test_ha_cluster_behind_a_vip(stack: Stack, account: tuple[Cli, str]) -> None:
    cli, account_id = account
    cluster = create(cli, account_id, HA_SPEC)
    running = asyncio.run(maas_view(stack))
    [vip] = running["reserved"]
    [subnet] = running["subnets"]
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(subnet)
    fqdn = f"{endpoint_record_name(cluster['id'])}.maas"
    assert running["records"] == {fqdn: [vip]}  # the reservation's ownership mark
    node_ips = {ip for owner, _, ips in running["owned"] if owner == cluster["id"] for ip in ips}
    assert len(node_ips) == 5 and vip not in node_ips
    events = cli.json("cluster", "events", cluster["id"])
    assert any(f"control-plane endpoint (vip): {vip}" in e["message"] for e in events)

    delete_leaves_nothing(cli, stack, cluster["id"])


def test_ha_cluster_behind_a_dns_record(
    stack: Stack, account: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, account_id = account
    spec = yaml.safe_load(HA_SPEC.read_text())
    spec["name"] = "demo-ha-dns"
    spec["control_plane_endpoint"] = {"mode": "dns"}
    spec_file = tmp_path / "cluster-ha-dns.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    cluster = create(cli, account_id, spec_file)
    running = asyncio.run(maas_view(stack))
    control_plane = sorted(
        ip
        for owner, pool, ips in running["owned"]
        if owner == cluster["id"] and pool == "control-plane"
        for ip in ips
    )
    assert len(control_plane) == 3
    assert running["records"] == {f"{endpoint_record_name(cluster['id'])}.maas": control_plane}
    assert running["reserved"] == []

    # The whole control plane repaved, one node at a time, through the one free machine (and
    # each released one after it): the record follows, and the node that ran the cluster's
    # commands hands them on, so commands still run afterwards.
    repaved = cli.run(
        "cluster", "repave", cluster["id"], "--pool", "control-plane", "--wait",
        "--timeout", "240",
    )  # fmt: skip
    assert "succeeded: repaved 3 node(s) of pool control-plane" in repaved.stdout
    machines = cli.json("cluster", "get", cluster["id"])["machines"]
    fresh = [m for m in machines if m["pool"] == "control-plane"]
    assert len(fresh) == 3
    after = asyncio.run(maas_view(stack))
    fresh_ips = sorted(ip for m in fresh for ip in m["ip_addresses"])
    assert after["records"] == {f"{endpoint_record_name(cluster['id'])}.maas": fresh_ips}
    worker = next(m for m in machines if m["pool"] != "control-plane")
    drained = cli.run(
        "cluster", "drain", cluster["id"], worker["hostname"], "--wait", "--timeout", "60"
    )
    assert "succeeded" in drained.stdout

    delete_leaves_nothing(cli, stack, cluster["id"])
