"""MAAS's error statuses and bodies, as python-libmaas receives them."""

from __future__ import annotations

import pytest
from maas.client.bones import ActionAPI, CallError

from tests.maas_emulator.conftest import StartEmulator


async def test_unknown_machine_is_404(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    client = await emu.client()
    with pytest.raises(CallError) as caught:
        await client.machines.get("nosuch")
    assert caught.value.status == 404
    assert caught.value.content == b"No Machine matches the given query."


async def test_another_users_machine_is_403(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=2)
    alice = await emu.client(await emu.new_user("alice"))
    bob = await emu.client(await emu.new_user("bob"))
    assert (await alice.users.whoami()).username == "alice"
    mine = await alice.machines.allocate()
    assert {m.system_id for m in await bob.machines.list()} != set()
    assert mine.system_id not in {m.system_id for m in await bob.machines.list()}
    with pytest.raises(CallError) as caught:
        await bob.machines.get(mine.system_id)
    assert caught.value.status == 403
    session = bob._origin.session
    for call in (session.Machine.release, session.Machine.deploy, session.Machine.power_on):
        with pytest.raises(CallError) as caught:
            await call(system_id=mine.system_id)
        assert caught.value.status == 403
    # The admin sees and may act on everybody's machines.
    admin = await emu.client()
    assert (await admin.machines.get(mine.system_id)).owner.username == "alice"


async def test_wrong_state_is_409(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    client = await emu.client()
    [machine] = await client.machines.list()
    session = await emu.bones()
    with pytest.raises(CallError) as caught:
        await session.Machine.set_owner_data(system_id=machine.system_id, key="v")
    assert caught.value.status == 409
    with pytest.raises(CallError) as caught:
        await machine.power_on()
    assert caught.value.status == 409
    deployed = await machine.deploy()
    with pytest.raises(CallError) as caught:
        await deployed.deploy()
    assert caught.value.status == 409
    assert caught.value.response.content_type == "text/plain"
    with pytest.raises(CallError) as caught:
        await deployed.mark_fixed()
    assert caught.value.status == 409


async def test_unrecognised_op_is_400(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=0)
    session = await emu.bones()
    bogus = ActionAPI(
        {"name": "foo", "method": "POST", "op": "foo", "restful": False, "doc": ""},
        session.Machines,
    )
    with pytest.raises(CallError) as caught:
        await bogus()
    assert caught.value.status == 400
    assert caught.value.content == b"Unrecognised signature: method=POST op=foo"


async def test_bad_key_is_401_with_challenge(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=0)
    consumer, token, _ = emu.api_key.split(":")
    client = await emu.client(f"{consumer}:{token}:wrongsecret")
    with pytest.raises(CallError) as caught:
        await client.users.whoami()
    assert caught.value.status == 401
    assert caught.value.response.headers["WWW-Authenticate"] == 'OAuth realm="OAuth"'
    stranger = await emu.client("a:b:c")
    with pytest.raises(CallError) as caught:
        await stranger.machines.list()
    assert caught.value.status == 401


async def test_non_admins_cannot_manage_tags(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=0)
    user = await emu.client(await emu.new_user("carol"))
    with pytest.raises(CallError) as caught:
        await user.tags.create("mine")
    assert caught.value.status == 403
