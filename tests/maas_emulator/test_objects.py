"""Tags, zones and resource pools through python-libmaas."""

from __future__ import annotations

import pytest
from maas.client.bones import CallError

from tests.maas_emulator.conftest import StartEmulator


async def test_tags(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=3)
    client = await emu.client()
    tag = await client.tags.create("fast", comment="NVMe")
    assert (await client.tags.get("fast")).comment == "NVMe"
    [first, second, _] = await client.machines.list()
    await first.tags.add(tag)
    session = await emu.bones()
    result = await session.Tag.update_nodes(name="fast", add=[second.system_id])
    assert result == {"added": 1, "removed": 0}
    tagged = {m.system_id for m in await client.machines.list() if "fast" in m._data["tag_names"]}
    assert tagged == {first.system_id, second.system_id}
    assert (await client.machines.allocate(tags=["fast"], dry_run=True)).system_id in tagged
    await (await client.machines.get(first.system_id)).tags.remove(tag)
    with pytest.raises(CallError) as caught:
        await client.tags.create("fast")
    assert caught.value.status == 400
    await tag.delete()
    assert [t.name for t in await client.tags.list()] == []
    with pytest.raises(CallError) as caught:
        await client.tags.get("fast")
    assert caught.value.status == 404


async def test_zones_and_pools(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=6)
    client = await emu.client()
    zones = {z.name for z in await client.zones.list()}
    assert "default" in zones and len(zones) == 3
    pools = {p.name for p in await client.resource_pools.list()}
    assert "default" in pools

    rack = await client.zones.create("rack-9", description="row 9")
    assert (await client.zones.get("rack-9")).description == "row 9"
    pool = await client.resource_pools.create("batch", description="batch jobs")
    assert (await client.resource_pools.get(pool.id)).name == "batch"

    machine = (await client.machines.list())[0]
    machine.zone = rack
    await machine.save()
    assert (await client.machines.get(machine.system_id)).zone.name == "rack-9"
    session = await emu.bones()
    allocated = await session.Machines.allocate(zone="rack-9", dry_run=True)
    assert allocated["system_id"] == machine.system_id

    await rack.delete()
    assert (await client.machines.get(machine.system_id)).zone.name == "default"
    await pool.delete()
    with pytest.raises(CallError) as caught:
        await client.resource_pools.get(pool.id)
    assert caught.value.status == 404


async def test_version_and_whoami(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=0)
    client = await emu.client()
    version = await client.version.get()
    assert version.version_info >= (2, 0) and "authenticate-api" in version.capabilities
    me = await client.users.whoami()
    assert me.username == "admin" and me.is_admin
