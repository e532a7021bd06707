"""Subnets, IP reservations, domains, DNS resources and boot images through python-libmaas.

python-libmaas 0.6.8 has objects for subnets, domains and boot resources; for
`ipaddresses/` and `dnsresources/` it has none, so those go through its `bones` session,
which binds every handler the `describe/` document lists.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from maas.client.bones import CallError

from maas_emulator.config import EmulatorConfig
from tests.maas_emulator.conftest import StartEmulator, running_emulator


async def test_the_machines_subnet_holds_their_deployed_addresses(
    start_emulator: StartEmulator,
) -> None:
    emu = await start_emulator(machines=3)
    client = await emu.client()
    [subnet] = await client.subnets.list()
    network = ipaddress.ip_network(subnet.cidr)
    assert (await client.subnets.get(subnet.id)).cidr == subnet.cidr
    machine = (await client.machines.list())[0]
    assert machine.ip_addresses == []
    deploying = await machine.deploy(distro_series="jammy", wait=False)
    [ip] = deploying.ip_addresses  # claimed when deployment starts, as MAAS does
    assert ipaddress.ip_address(ip) in network


async def test_reserve_list_and_release_an_address(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=3)
    client = await emu.client()
    session = await emu.bones()
    [subnet] = await client.subnets.list()
    machine_ips = {str(ipaddress.ip_address("10.20.0.10") + i) for i in range(3)}

    free = await session.IPAddresses.reserve(subnet=subnet.cidr, hostname="vip-one")
    assert free["alloc_type_name"] == "User reserved" and free["subnet"]["cidr"] == subnet.cidr
    assert free["ip"] not in machine_ips and free["ip"] != subnet.gateway_ip
    chosen = await session.IPAddresses.reserve(ip="10.20.100.7")
    assert chosen["ip"] == "10.20.100.7"
    listed = {a["ip"] for a in await session.IPAddresses.read()}
    assert listed == {free["ip"], "10.20.100.7"}
    assert [a["ip"] for a in await session.IPAddresses.read(ip="10.20.100.7")] == ["10.20.100.7"]

    # The hostname became a DNS name in the default domain.
    [record] = await session.DNSResources.read(name="vip-one")
    assert record["fqdn"] == "vip-one.maas"
    assert [a["ip"] for a in record["ip_addresses"]] == [free["ip"]]

    for taken in ("10.20.100.7", "10.20.0.10"):  # reserved, and a machine's address
        with pytest.raises(CallError) as caught:
            await session.IPAddresses.reserve(ip=taken)
        assert caught.value.status == 404
    with pytest.raises(CallError) as caught:
        await session.IPAddresses.reserve(ip="192.168.1.1")
    assert caught.value.status == 400 and b"No known subnet" in caught.value.content
    with pytest.raises(CallError) as caught:
        await session.IPAddresses.reserve()
    assert caught.value.status == 400

    await session.IPAddresses.release(ip=free["ip"])
    assert {a["ip"] for a in await session.IPAddresses.read()} == {"10.20.100.7"}
    assert await session.DNSResources.read(name="vip-one") == []  # left without an address
    with pytest.raises(CallError) as caught:
        await session.IPAddresses.release(ip=free["ip"])
    assert caught.value.status == 400


async def test_reservations_belong_to_their_user(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    admin = await emu.bones()
    other = await emu.bones(await emu.new_user("bob"))
    mine = await admin.IPAddresses.reserve(ip="10.20.200.1")
    assert await other.IPAddresses.read() == []
    with pytest.raises(CallError) as caught:
        await other.IPAddresses.release(ip=mine["ip"])
    assert caught.value.status == 400
    with pytest.raises(CallError) as caught:
        await other.IPAddresses.read(all="true")
    assert caught.value.status == 403
    assert [a["ip"] for a in await admin.IPAddresses.read(all="true")] == [mine["ip"]]


async def test_reservations_survive_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path / "kept", machines=2, seed=1)
    async with running_emulator(config) as first:
        session = await first.bones()
        await session.IPAddresses.reserve(ip="10.20.9.9", hostname="kept")
    async with running_emulator(config) as second:
        session = await second.bones()
        assert [a["ip"] for a in await session.IPAddresses.read()] == ["10.20.9.9"]
        [record] = await session.DNSResources.read(name="kept")
        assert record["fqdn"] == "kept.maas"


async def test_domains(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    client = await emu.client()
    [default] = await client.domains.list()
    assert default.name == "maas" and default._data["is_default"] is True
    lab = await client.domains.create("lab.example", authoritative=True, ttl=60)
    assert (await client.domains.get(lab.id)).ttl == 60
    assert {d.name for d in await client.domains.list()} == {"maas", "lab.example"}
    session = await emu.bones()
    updated = await session.Domain.update(id=lab.id, ttl=120)
    assert updated["ttl"] == 120
    await lab.delete()
    assert [d.name for d in await client.domains.list()] == ["maas"]
    with pytest.raises(CallError) as caught:
        await session.Domain.delete(id=default.id)
    assert caught.value.status == 400
    user = await emu.client(await emu.new_user("carol"))
    with pytest.raises(CallError) as caught:
        await user.domains.create("nope.example")
    assert caught.value.status == 403


async def test_dns_resources_crud(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(machines=1)
    session = await emu.bones()
    created = await session.DNSResources.create(
        name="api", domain="maas", ip_addresses="10.20.0.10 10.20.0.11"
    )
    assert created["fqdn"] == "api.maas"
    assert [a["ip"] for a in created["ip_addresses"]] == ["10.20.0.10", "10.20.0.11"]
    by_fqdn = await session.DNSResources.create(fqdn="other.maas", ip_addresses="10.20.0.12")
    assert by_fqdn["fqdn"] == "other.maas"
    with pytest.raises(CallError) as caught:
        await session.DNSResources.create(fqdn="api.maas", ip_addresses="10.20.0.13")
    assert caught.value.status == 400
    with pytest.raises(CallError) as caught:
        await session.DNSResources.create(fqdn="empty.maas")
    assert caught.value.status == 400

    updated = await session.DNSResource.update(id=created["id"], ip_addresses="10.20.0.14")
    assert [a["ip"] for a in updated["ip_addresses"]] == ["10.20.0.14"]
    read = await session.DNSResource.read(id=created["id"])
    assert read == updated
    assert [r["fqdn"] for r in await session.DNSResources.read(domain="maas")] == [
        "api.maas",
        "other.maas",
    ]
    await session.DNSResource.delete(id=created["id"])
    with pytest.raises(CallError) as caught:
        await session.DNSResource.read(id=created["id"])
    assert caught.value.status == 404

    user = await emu.bones(await emu.new_user("dave"))
    assert len(await user.DNSResources.read()) == 1  # reading needs no admin rights
    with pytest.raises(CallError) as caught:
        await user.DNSResources.create(fqdn="mine.maas", ip_addresses="10.20.0.15")
    assert caught.value.status == 403


async def test_boot_resources_and_deploying_an_unknown_image(
    start_emulator: StartEmulator,
) -> None:
    emu = await start_emulator(machines=2)
    client = await emu.client()
    images = {(b.type, b.name) for b in await client.boot_resources.list()}
    assert {("Synced", "ubuntu/jammy"), ("Synced", "ubuntu/noble")} <= images
    custom = [name for kind, name in images if kind == "Uploaded"]
    assert custom and all(name.startswith("custom/") for name in custom)
    first = (await client.boot_resources.list())[0]
    assert (await client.boot_resources.get(first.id)).name == first.name

    session = await emu.bones()
    [one, two] = await client.machines.list()
    with pytest.raises(CallError) as caught:
        await session.Machine.deploy(system_id=one.system_id, distro_series="trusty")
    assert caught.value.status == 400 and b"distro_series" in caught.value.content
    with pytest.raises(CallError) as caught:
        await session.Machine.deploy(system_id=one.system_id, osystem="windows")
    assert caught.value.status == 400 and b"osystem" in caught.value.content
    assert (await client.machines.get(one.system_id)).status_name == "Ready"

    image = custom[0].split("/", 1)[1]
    deployed = await session.Machine.deploy(
        system_id=two.system_id, osystem="custom", distro_series=image
    )
    assert (deployed["osystem"], deployed["distro_series"]) == ("custom", image)
