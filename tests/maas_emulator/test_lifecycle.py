"""The status machine end to end, through python-libmaas's high-level client."""

from __future__ import annotations

import asyncio
from typing import Any

from maas.client.enum import NodeStatus, PowerState

from maas_emulator.inventory import Inventory
from tests.maas_emulator.conftest import StartEmulator, machines


async def wait_status(client: Any, system_id: str, status: NodeStatus) -> Any:
    for _ in range(200):
        machine = await client.machines.get(system_id)
        if machine.status == status:
            return machine
        await asyncio.sleep(0.02)
    raise AssertionError(f"{system_id} never reached {status}: {machine.status}")


async def test_full_lifecycle(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=3, deploy_seconds=0.2, release_seconds=0.1)
    client = await emu.client()

    machine = await client.machines.allocate(agent_name="cluster-1", comment="for test")
    assert machine.status == NodeStatus.ALLOCATED
    assert machine.owner.username == "admin"
    assert "agent_name" not in machine._data

    machine.owner_data["cluster"] = "c1"
    await machine.save()

    machine = await machine.deploy(user_data=b"#cloud-config\nruncmd: [agent]\n")
    assert machine.status == NodeStatus.DEPLOYING
    assert machine.osystem == "ubuntu"
    deployed = await wait_status(client, machine.system_id, NodeStatus.DEPLOYED)
    assert deployed.ip_addresses and deployed.power_state == PowerState.ON
    assert await deployed.query_power_state() == PowerState.ON
    assert deployed.owner_data == {"cluster": "c1"}
    [boot] = emu.hook_events
    assert boot.event == "deployed" and boot.system_id == machine.system_id
    assert boot.user_data == b"#cloud-config\nruncmd: [agent]\n"
    assert boot.ip_addresses == deployed.ip_addresses

    released = await deployed.release(erase=True)
    assert released.status == NodeStatus.DISK_ERASING
    ready = await wait_status(client, machine.system_id, NodeStatus.READY)
    assert ready.owner is None and ready.owner_data == {} and ready.osystem == ""
    assert ready.ip_addresses == [] and ready.power_state == PowerState.OFF
    assert [e.event for e in emu.hook_events] == ["deployed", "released"]

    # Release is idempotent, as in MAAS.
    again = await ready.release()
    assert again.status == NodeStatus.READY

    history = [e.description for e in await client.events.query(system_ids=[machine.system_id])]
    assert history[::-1] == [
        "From 'Ready' to 'Allocated': for test",
        "From 'Allocated' to 'Deploying'",
        "From 'Deploying' to 'Deployed'",
        "From 'Deployed' to 'Disk erasing'",
        "From 'Disk erasing' to 'Ready'",
    ]


async def test_deploying_a_ready_machine_allocates_it(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    client = await emu.client()
    [machine] = await client.machines.list()
    deployed = await machine.deploy(distro_series="noble")
    assert deployed.status == NodeStatus.DEPLOYED  # zero durations finish at once
    assert deployed.owner.username == "admin" and deployed.distro_series == "noble"


async def test_release_of_an_allocated_machine_is_immediate(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1, release_seconds=30)
    client = await emu.client()
    machine = await client.machines.allocate()
    assert (await machine.release()).status == NodeStatus.READY


async def test_failed_deployment_from_named_and_runtime_faults(
    start_emulator: StartEmulator,
) -> None:
    inventory = Inventory(machines=machines(2))
    emu = await start_emulator(inventory=inventory, faults={"fail_machines": ["node000"]})
    client = await emu.client()
    first = await client.machines.allocate(hostname="node000")
    assert (await first.deploy()).status == NodeStatus.FAILED_DEPLOYMENT
    assert emu.hook_events == []
    assert (await first.release()).status == NodeStatus.READY

    await emu.admin("PUT", "faults", {"fail_machines": [], "deploy_failure_rate": 1.0})
    second = await client.machines.allocate(hostname="node001")
    assert (await second.deploy()).status == NodeStatus.FAILED_DEPLOYMENT
    await emu.admin("PUT", "faults", {"deploy_failure_rate": 0.0})
    await second.release()
    second = await client.machines.allocate(hostname="node001")
    assert (await second.deploy()).status == NodeStatus.DEPLOYED


async def test_abort_broken_fixed_and_power(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1, deploy_seconds=30)
    client = await emu.client()
    machine = await client.machines.allocate()
    assert (await machine.power_on()).power_state == PowerState.ON
    assert (await machine.power_off()).power_state == PowerState.OFF
    assert await machine.query_power_state() == PowerState.OFF

    deploying = await machine.deploy()
    assert deploying.status == NodeStatus.DEPLOYING
    assert (await deploying.abort()).status == NodeStatus.ALLOCATED

    broken = await deploying.mark_broken(comment="bad disk")
    assert broken.status == NodeStatus.BROKEN
    fixed = await broken.mark_fixed()
    assert fixed.status == NodeStatus.READY and fixed.owner is None


async def test_power_cycle_of_a_deployed_machine_stops_and_boots_its_os(
    start_emulator: StartEmulator,
) -> None:
    """What remediation's power cycle relies on: off stops the OS (its agent), on boots it."""
    emu = await start_emulator(machines=1, deploy_seconds=0)
    client = await emu.client()
    machine = await client.machines.allocate()
    deployed = await machine.deploy(user_data=b"#cloud-config\n")
    assert deployed.status == NodeStatus.DEPLOYED
    assert (await deployed.power_off()).power_state == PowerState.OFF
    assert (await deployed.power_on()).power_state == PowerState.ON
    assert [e.event for e in emu.hook_events] == ["deployed", "released", "deployed"]
    assert emu.hook_events[-1].user_data == b"#cloud-config\n"


async def test_a_dead_machine_boots_nothing_and_fails_every_deploy(
    start_emulator: StartEmulator,
) -> None:
    """The `dead_machines` fault: hardware that stays dark, so a power cycle cannot help."""
    emu = await start_emulator(machines=1, deploy_seconds=0)
    client = await emu.client()
    machine = await client.machines.allocate()
    deployed = await machine.deploy(user_data=b"#cloud-config\n")
    await emu.admin("PUT", "faults", {"dead_machines": [machine.hostname]})
    assert (await deployed.power_off()).power_state == PowerState.OFF
    await deployed.power_on()
    assert [e.event for e in emu.hook_events] == ["deployed", "released"]
    released = await deployed.release()
    assert released.status == NodeStatus.READY
    again = await (await client.machines.allocate()).deploy()
    assert again.status == NodeStatus.FAILED_DEPLOYMENT
