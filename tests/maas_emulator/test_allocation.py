"""Every allocate constraint, dry_run and agent_name, through python-libmaas (bones where the
high-level client lacks the parameter)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from maas.client.bones import CallError
from maas.client.viscera.machines import MachineNotFound

from maas_emulator.inventory import Inventory, MachineSpec
from tests.maas_emulator.conftest import Running, StartEmulator

INVENTORY = Inventory(
    zones=["default", "az1", "az2"],
    pools=["default", "gold"],
    tags=["unused"],
    machines=[
        MachineSpec(hostname="small", system_id="aaaaaa", cpu_count=2, memory=4096),
        MachineSpec(hostname="big", system_id="bbbbbb", cpu_count=16, memory=65536, zone="az1"),
        MachineSpec(
            hostname="gpu", system_id="cccccc", cpu_count=8, tags=["gpu", "ssd"], zone="az2"
        ),
        MachineSpec(hostname="arm", system_id="dddddd", architecture="arm64/generic", pool="gold"),
    ],
)


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> Running:
    return await start_emulator(inventory=INVENTORY)


async def allocate(emu: Running, **constraints: Any) -> str:
    session = await emu.bones()
    data = await session.Machines.allocate(dry_run=True, **constraints)
    return str(data["hostname"])


@pytest.mark.parametrize(
    ("constraints", "hostname"),
    [
        ({"name": "big"}, "big"),
        ({"name": "gpu.maas"}, "gpu"),
        ({"system_id": "dddddd"}, "arm"),
        ({"arch": "arm64"}, "arm"),
        ({"arch": "arm64/generic"}, "arm"),
        ({"cpu_count": "10"}, "big"),
        ({"mem": "60000.5"}, "big"),
        ({"tags": ["gpu", "ssd"]}, "gpu"),
        ({"tags": "gpu,ssd"}, "gpu"),
        ({"not_tags": "unused", "zone": "az2"}, "gpu"),
        ({"zone": "az1"}, "big"),
        ({"not_in_zone": ["default", "az1"]}, "gpu"),
        ({"pool": "gold"}, "arm"),
        ({"not_in_pool": "default"}, "arm"),
        ({"cpu_count": "4", "not_tags": "gpu"}, "big"),
    ],
)
async def test_each_constraint(emu: Running, constraints: dict[str, Any], hostname: str) -> None:
    assert await allocate(emu, **constraints) == hostname


async def test_high_level_allocate_constraints(emu: Running) -> None:
    client = await emu.client()
    machine = await client.machines.allocate(cpus=8, memory=8000, tags=["gpu"], dry_run=True)
    assert machine.hostname == "gpu"
    assert machine.status_name == "Ready"  # dry run leaves it alone
    machine = await client.machines.allocate(zone="az1", architectures=["amd64"])
    assert machine.hostname == "big" and machine.status_name == "Allocated"


async def test_agent_name_is_stored_filterable_and_never_shown(emu: Running) -> None:
    session = await emu.bones()
    allocated = await session.Machines.allocate(agent_name="cluster-7/req-1", pool="gold")
    assert "agent_name" not in allocated
    found = await session.Machines.read(agent_name="cluster-7/req-1")
    assert [m["system_id"] for m in found] == [allocated["system_id"]]
    assert await session.Machines.read(agent_name="other") == []
    assert all("agent_name" not in m for m in await session.Machines.read())


async def test_read_filters(emu: Running) -> None:
    session = await emu.bones()
    await session.Machines.allocate(name="small")

    async def hostnames(**filters: Any) -> set[str]:
        return {m["hostname"] for m in await session.Machines.read(**filters)}

    assert await hostnames(hostname=["big", "gpu"]) == {"big", "gpu"}
    assert await hostnames(id=["dddddd"]) == {"arm"}
    assert await hostnames(zone="az1") == {"big"}
    assert await hostnames(pool="gold") == {"arm"}
    assert await hostnames(status="allocated") == {"small"}
    assert await hostnames(status="ready") == {"big", "gpu", "arm"}
    assert await hostnames(owner="admin") == {"small"}
    listed = await session.Machines.list_allocated()
    assert [m["hostname"] for m in listed] == ["small"]


async def test_no_match_is_409_text_with_constraints(emu: Running) -> None:
    session = await emu.bones()
    with pytest.raises(CallError) as caught:
        await session.Machines.allocate(cpu_count="64", zone="az1")
    error = caught.value
    assert error.status == 409
    assert error.response.content_type == "text/plain"
    text = error.content.decode()
    assert text.startswith("No available machine matches constraints: ")
    assert "cpu_count" in text and "az1" in text
    client = await emu.client()
    with pytest.raises(MachineNotFound):
        await client.machines.allocate(cpus=64)


@pytest.mark.parametrize(
    ("constraints", "field", "message"),
    [
        ({"tags": "nope"}, "tags", "No such tag(s): 'nope'."),
        ({"not_tags": "nope"}, "not_tags", "No such tag(s): 'nope'."),
        ({"zone": "mars"}, "zone", "No such zone: 'mars'."),
        ({"not_in_zone": "mars"}, "not_in_zone", "No such zone(s): mars."),
        ({"pool": "deep"}, "pool", "No such pool: 'deep'."),
        ({"not_in_pool": "deep"}, "not_in_pool", "No such pool(s): deep."),
        ({"cpu_count": "many"}, "cpu_count", "Invalid number: 'many'"),
    ],
)
async def test_unknown_names_are_400_field_errors(
    emu: Running, constraints: dict[str, Any], field: str, message: str
) -> None:
    session = await emu.bones()
    with pytest.raises(CallError) as caught:
        await session.Machines.allocate(**constraints)
    assert caught.value.status == 400
    assert caught.value.response.content_type == "application/json"
    assert json.loads(caught.value.content) == {field: [message]}


async def test_bulk_release(emu: Running) -> None:
    session = await emu.bones()
    ids = [(await session.Machines.allocate())["system_id"] for _ in range(2)]
    assert await session.Machines.release(machines=ids) == ids
    ready = await session.Machines.read(id=ids)
    assert {m["status_name"] for m in ready} == {"Ready"}
    with pytest.raises(CallError) as caught:
        await session.Machines.release(machines=["zzzzzz"])
    assert caught.value.status == 400
