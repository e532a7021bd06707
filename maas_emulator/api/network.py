"""`subnets/`, `subnets/{id}/` and `ipaddresses/` (list, reserve, release)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from aiohttp import web

from maas_emulator.api import render
from maas_emulator.api.dns import add_address_record
from maas_emulator.api.forms import flag
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from maas_emulator.models import IPAllocType, StaticIP, Subnet
from maas_emulator.state import State

subnets = Resource("SubnetsHandler", "subnets/", "Manage subnets.")
subnet = Resource("SubnetHandler", "subnets/{id}/", "Manage a subnet.")
ipaddresses = Resource(
    "IPAddressesHandler", "ipaddresses/", "Manage IP addresses allocated by MAAS."
)


def _get_subnet(call: Call) -> Subnet:
    key = call.path["id"]
    for s in call.emulator.state.subnets.values():
        if key in (str(s.id), s.name, f"cidr:{s.cidr}"):
            return s
    raise NotFound("No Subnet matches the given query.")


@subnets.action("GET")
def read_subnets(call: Call) -> list[dict[str, Any]]:
    """List all subnets."""
    return [render.subnet(s) for s in call.emulator.state.subnets.values()]


@subnet.action("GET")
def read_subnet(call: Call) -> dict[str, Any]:
    """Read a subnet (by id, name, or `cidr:<cidr>`)."""
    return render.subnet(_get_subnet(call))


def in_use(state: State) -> set[str]:
    """Addresses MAAS will not hand out: reservations and every machine's address."""
    return set(state.ip_addresses) | {m.address for m in state.machines.values()}


def _subnet_of(state: State, ip: ipaddress.IPv4Address) -> Subnet | None:
    return next((s for s in state.subnets.values() if ip in ipaddress.ip_network(s.cidr)), None)


def _free_address(state: State, s: Subnet) -> str:
    """The highest free address: machines count up from the bottom of the subnet."""
    network = ipaddress.ip_network(s.cidr)
    taken = in_use(state) | {s.gateway_ip or ""}
    for candidate in reversed(list(network.hosts())):
        if str(candidate) not in taken:
            return str(candidate)
    raise ServiceUnavailable(f"No more IPs available in subnet: {s.cidr}.")


@ipaddresses.action("GET")
def read_ipaddresses(call: Call) -> list[dict[str, Any]]:
    """List IP addresses reserved by the caller.

    :param ip: Only this IP address.
    :param all: (admins) Every reserved address, whoever owns it.
    :param owner: (admins) Only addresses of this user.
    """
    p = call.params
    state = call.emulator.state
    everyone, owner = flag(p, "all"), p.get("owner")
    if everyone and not call.user.is_admin:
        raise Forbidden("Listing all IP addresses requires admin privileges.")
    if owner is not None and not call.user.is_admin:
        raise Forbidden("Listing another user's IP addresses requires admin privileges.")
    if owner is None and not everyone:
        owner = call.user.username
    shown = [
        a
        for a in state.ip_addresses.values()
        if (owner is None or a.owner == owner) and ("ip" not in p or a.ip == p["ip"])
    ]
    return [render.ip_address(a, state) for a in shown]


@ipaddresses.action("POST", "reserve")
def reserve(call: Call) -> dict[str, Any]:
    """Reserve an IP address for use outside of MAAS.

    :param subnet: CIDR of the subnet to reserve a free address in.
    :param ip: The address to reserve, inside a known subnet.
    :param ip_address: (Deprecated) Alias for `ip`.
    :param hostname: A name for the address; a DNS resource in the default domain unless
        the name carries a domain.
    :param mac: A MAC address to link to the reservation.

    Returns 400 when no known subnet matches, 404 when the address is in use, 503 when
    the subnet has no free address.
    """
    p = call.params
    state = call.emulator.state
    wanted = p.get("ip") or p.get("ip_address")
    found: Subnet | None
    if wanted:
        try:
            address = ipaddress.IPv4Address(wanted)
        except ValueError as error:
            raise BadRequest({"ip": ["Enter a valid IPv4 or IPv6 address."]}) from error
        found = _subnet_of(state, address)
        if found is None:
            raise BadRequest(f"No known subnet for IP address: {wanted}.")
        if wanted in in_use(state):
            raise NotFound(f"The IP address {wanted} is already in use.")
        ip = wanted
    elif p.get("subnet"):
        found = next(
            (s for s in state.subnets.values() if p["subnet"] in (s.cidr, s.name, str(s.id))),
            None,
        )
        if found is None:
            raise BadRequest(f"Unable to identify subnet: {p['subnet']}.")
        ip = _free_address(state, found)
    else:
        raise BadRequest("Must supply either the 'subnet' or the 'ip' parameter.")
    reservation = StaticIP(
        ip=ip,
        subnet_id=found.id,
        owner=call.user.username,
        alloc_type=IPAllocType.USER_RESERVED,
        mac=p.get("mac") or None,
        created=time.time(),
    )
    if p.get("hostname"):
        add_address_record(call, p["hostname"], ip)
    state.save_ip(reservation)
    return render.ip_address(reservation, state)


@ipaddresses.action("POST", "release")
def release(call: Call) -> web.Response:
    """Release an IP address the caller reserved; DNS names left without one go too.

    :param ip: The address to release.
    :param force: (admins) Release even another user's reservation.

    Returns 400 when the caller holds no such reservation.
    """
    p = call.params
    state = call.emulator.state
    ip = p.get("ip", "")
    if not ip:
        raise BadRequest("No provided ip!")
    force = flag(p, "force")
    if force and not call.user.is_admin:
        raise Forbidden("Force-releasing an IP address requires admin privileges.")
    reservation = state.ip_addresses.get(ip)
    if reservation is None or not (force or reservation.owner == call.user.username):
        if force:
            raise BadRequest(f"IP address {ip} does not exist.")
        raise BadRequest(
            f"IP address {ip} does not exist, is not the correct type of address, or does "
            "not belong to the requesting user.\nIf you are sure you want to release this "
            "address, use force=true as a MAAS administrator."
        )
    state.delete_ip(ip)
    return web.Response(status=204)
