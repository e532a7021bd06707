"""Allocation is atomic: 200 concurrent callers, 100 matching machines."""

from __future__ import annotations

import asyncio
from collections import Counter

from maas.client.viscera.machines import MachineNotFound

from maas_emulator.inventory import Inventory
from tests.maas_emulator.conftest import StartEmulator, machines


async def test_200_concurrent_allocations_for_100_machines(start_emulator: StartEmulator) -> None:
    inventory = Inventory(
        machines=machines(100, tags=["match"]) + machines(20, prefix="other"),
    )
    emu = await start_emulator(inventory=inventory)
    keys = [emu.api_key, await emu.new_user("u1"), await emu.new_user("u2")]
    clients = [await emu.client(key) for key in keys]

    async def attempt(i: int) -> str | None:
        client = clients[i % len(clients)]
        try:
            machine = await client.machines.allocate(tags=["match"], agent_name=f"a{i}")
        except MachineNotFound as error:
            assert error.__cause__.status == 409
            assert b"No available machine matches constraints" in error.__cause__.content
            return None
        return str(machine.system_id)

    results = await asyncio.gather(*(attempt(i) for i in range(200)))
    won = [r for r in results if r is not None]
    assert len(won) == 100 and results.count(None) == 100
    assert len(set(won)) == 100, "a machine went to two callers"

    everything = await clients[0].machines.list()
    owners = Counter(m.owner.username for m in everything if m.owner is not None)
    assert sum(owners.values()) == 100
    assert all("match" in m._data["tag_names"] for m in everything if m.owner is not None)
