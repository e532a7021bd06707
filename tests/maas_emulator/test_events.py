"""`events/?op=query`: filters and paging through python-libmaas."""

from __future__ import annotations

from tests.maas_emulator.conftest import StartEmulator


async def test_paging_backwards_and_forwards(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=3)
    client = await emu.client()
    for _ in range(4):  # 4 cycles x 3 machines x 5 transitions = 60 events
        allocated = [await client.machines.allocate() for _ in range(3)]
        for machine in allocated:
            await machine.deploy()
            await machine.release()

    newest = await client.events.query(limit=10)
    assert len(newest) == 10
    ids = [e.event_id for e in newest]
    assert ids == sorted(ids, reverse=True)

    # python-libmaas 0.6.8's prev()/next() hand back an un-awaited coroutine (and so its
    # backwards()/forwards() iterators break): page by hand, awaiting twice.
    everything, page = [], newest
    while len(page):
        everything += [e.event_id for e in page]
        page = await (await page.prev())
    assert len(everything) == 60 and everything == sorted(everything, reverse=True)
    assert [e.event_id for e in await (await newest.prev())] == everything[10:20]
    oldest = await client.events.query(before=everything[-5], limit=3)
    assert [e.event_id for e in oldest] == everything[-4:-1]
    after = await client.events.query(after=everything[-3], limit=2)
    assert [e.event_id for e in after] == everything[-5:-3]
    newer = await (await after.next())
    assert [e.event_id for e in newer] == everything[-7:-5]


async def test_filters(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=2)
    session = await emu.bones()
    client = await emu.client()
    mine = await session.Machines.allocate(agent_name="ag-1")
    other = await client.machines.allocate()
    await other.deploy()

    by_agent = await client.events.query(agent_name="ag-1")
    assert {e.system_id for e in by_agent} == {mine["system_id"]}
    by_host = await client.events.query(hostnames=[other.hostname])
    assert by_host[0].description == "From 'Deploying' to 'Deployed'"
    assert {e.hostname for e in by_host} == {other.hostname}
    by_id = await client.events.query(system_ids=[other.system_id], level="DEBUG")
    assert len(by_id) == 3
    assert len(await client.events.query(level="ERROR")) == 0
    [event] = await client.events.query(system_ids=[mine["system_id"]])
    assert event.username == "admin" and event.level.name == "INFO"
