"""`domains/`, `domains/{id}/`, `dnsresources/` and `dnsresources/{id}/`.

Changing DNS needs MAAS admin rights, as in MAAS; reading does not.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from aiohttp import web

from maas_emulator.api import render
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, Forbidden, NotFound
from maas_emulator.models import DnsResource, Domain
from maas_emulator.state import State, next_number

domains = Resource("DomainsHandler", "domains/", "Manage domains.")
domain = Resource("DomainHandler", "domains/{id}/", "Manage a domain.")
dnsresources = Resource("DNSResourcesHandler", "dnsresources/", "Manage DNS resources.")
dnsresource = Resource("DNSResourceHandler", "dnsresources/{id}/", "Manage a DNS resource.")

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


def _admin(call: Call, what: str) -> None:
    if not call.user.is_admin:
        raise Forbidden(f"You do not have permission to {what}.")


def _domain_by(state: State, key: str) -> Domain | None:
    key = key.removeprefix("name:")
    return next((d for d in state.domains.values() if key in (str(d.id), d.name)), None)


def _get_domain(call: Call) -> Domain:
    found = _domain_by(call.emulator.state, call.path["id"])
    if found is None:
        raise NotFound("No Domain matches the given query.")
    return found


def _get_record(call: Call) -> DnsResource:
    key = call.path["id"]
    found = call.emulator.state.dns_resources.get(int(key)) if key.isdigit() else None
    if found is None:
        raise NotFound("No DNSResource matches the given query.")
    return found


def _addresses(call: Call) -> list[str]:
    """`ip_addresses`: repeated, or one value separated by spaces or commas, as MAAS takes it."""
    found: list[str] = []
    for value in call.params.getall("ip_addresses", []):
        for item in re.split(r"[\s,]+", value.strip()):
            if not item:
                continue
            try:
                ipaddress.ip_address(item)
            except ValueError as error:
                raise BadRequest(
                    {"ip_addresses": [f"{item} is not a valid IP address."]}
                ) from error
            if item not in found:
                found.append(item)
    return found


def _split_name(state: State, name: str) -> tuple[str, Domain]:
    """A hostname with an optional domain, as MAAS reads `fqdn` and `hostname`."""
    label, _, rest = name.partition(".")
    target = _domain_by(state, rest) if rest else state.default_domain()
    if target is None:
        raise NotFound(f"No Domain matches the given query: {rest}.")
    if not LABEL.match(label):
        raise BadRequest({"name": [f"Invalid DNS name: {label!r}."]})
    return label, target


def add_address_record(call: Call, hostname: str, ip: str) -> None:
    """Point `hostname` at `ip` too (ipaddresses reserve with a hostname does this)."""
    state = call.emulator.state
    label, target = _split_name(state, hostname)
    record = next(
        (r for r in state.dns_resources.values() if r.name == label and r.domain_id == target.id),
        None,
    )
    if record is None:
        record = DnsResource(id=next_number(state.dns_resources), name=label, domain_id=target.id)
    if ip not in record.ip_addresses:
        record.ip_addresses.append(ip)
    state.save_dns_resource(record)


# --- domains ------------------------------------------------------------------------------


@domains.action("GET")
def read_domains(call: Call) -> list[dict[str, Any]]:
    """List all domains."""
    state = call.emulator.state
    return [render.domain(d, state) for d in state.domains.values()]


@domains.action("POST")
def create_domain(call: Call) -> dict[str, Any]:
    """Create a domain (admins only).

    :param name: Name of the domain.
    :param authoritative: Whether MAAS is authoritative for it.
    :param ttl: Default TTL of its records.
    """
    _admin(call, "create a domain")
    state = call.emulator.state
    name = call.params.get("name", "")
    if not name:
        raise BadRequest({"name": ["This field is required."]})
    if _domain_by(state, name) is not None:
        raise BadRequest({"name": ["Domain with this Name already exists."]})
    new = Domain(
        id=next_number(state.domains),
        name=name,
        authoritative=call.params.get("authoritative", "true").lower() in ("true", "1"),
        ttl=_ttl(call, "ttl"),
    )
    state.save_domain(new)
    return render.domain(new, state)


@domain.action("GET")
def read_domain(call: Call) -> dict[str, Any]:
    """Read a domain."""
    return render.domain(_get_domain(call), call.emulator.state)


@domain.action("PUT")
def update_domain(call: Call) -> dict[str, Any]:
    """Update a domain (admins only): name, authoritative, ttl."""
    _admin(call, "update a domain")
    current = _get_domain(call)
    p = call.params
    current.name = p.get("name", current.name)
    if "authoritative" in p:
        current.authoritative = p["authoritative"].lower() in ("true", "1")
    if "ttl" in p:
        current.ttl = _ttl(call, "ttl")
    call.emulator.state.save_domain(current)
    return render.domain(current, call.emulator.state)


@domain.action("DELETE")
def delete_domain(call: Call) -> web.Response:
    """Delete a domain (admins only); the default domain and domains with records stay."""
    _admin(call, "delete a domain")
    state = call.emulator.state
    current = _get_domain(call)
    if current.is_default:
        raise BadRequest("This domain is the default domain, it cannot be deleted.")
    if any(r.domain_id == current.id for r in state.dns_resources.values()):
        raise BadRequest("This domain is not empty: delete its DNS resources first.")
    state.delete_domain(current.id)
    return web.Response(status=204)


def _ttl(call: Call, key: str) -> int | None:
    text = call.params.get(key, "")
    if not text:
        return None
    if not text.isdigit():
        raise BadRequest({key: ["Enter a whole number."]})
    return int(text)


# --- DNS resources ------------------------------------------------------------------------


@dnsresources.action("GET")
def read_dnsresources(call: Call) -> list[dict[str, Any]]:
    """List DNS resources.

    :param domain: Only resources in this domain (name or id).
    :param name: Only resources with this name.
    :param rrtype: Only resources with records of this type (A and AAAA are addresses).
    """
    p = call.params
    state = call.emulator.state
    wanted_domain = _domain_by(state, p["domain"]) if "domain" in p else None
    if "domain" in p and wanted_domain is None:
        raise NotFound("No Domain matches the given query.")
    rrtype = p.get("rrtype", "").upper()
    shown = [
        r
        for r in state.dns_resources.values()
        if (wanted_domain is None or r.domain_id == wanted_domain.id)
        and ("name" not in p or r.name == p["name"])
        and (not rrtype or (rrtype in ("A", "AAAA") and r.ip_addresses))
    ]
    return [render.dns_resource(r, state) for r in shown]


@dnsresources.action("POST")
def create_dnsresource(call: Call) -> dict[str, Any]:
    """Create a DNS resource (admins only).

    :param fqdn: Hostname with domain; ignored when name or domain is given.
    :param name: Hostname without domain.
    :param domain: Domain (name or id).
    :param address_ttl: TTL of its address records.
    :param ip_addresses: Addresses it resolves to (space separated).
    """
    _admin(call, "create a DNS resource")
    state = call.emulator.state
    p = call.params
    if "name" in p or "domain" in p:
        label = p.get("name", "")
        target = _domain_by(state, p["domain"]) if "domain" in p else state.default_domain()
        if target is None:
            raise NotFound("No Domain matches the given query.")
        if not LABEL.match(label):
            raise BadRequest({"name": [f"Invalid DNS name: {label!r}."]})
    elif p.get("fqdn"):
        label, target = _split_name(state, p["fqdn"])
    else:
        raise BadRequest({"fqdn": ["Either fqdn or (name, domain) must be specified."]})
    if any(r.name == label and r.domain_id == target.id for r in state.dns_resources.values()):
        raise BadRequest({"__all__": [f"Labels must be unique: {label}.{target.name} exists."]})
    addresses = _addresses(call)
    if not addresses:
        raise BadRequest({"__all__": ["At least one of ip_addresses or rrdata must be given."]})
    record = DnsResource(
        id=next_number(state.dns_resources),
        name=label,
        domain_id=target.id,
        address_ttl=_ttl(call, "address_ttl"),
        ip_addresses=addresses,
    )
    state.save_dns_resource(record)
    return render.dns_resource(record, state)


@dnsresource.action("GET")
def read_dnsresource(call: Call) -> dict[str, Any]:
    """Read a DNS resource."""
    return render.dns_resource(_get_record(call), call.emulator.state)


@dnsresource.action("PUT")
def update_dnsresource(call: Call) -> dict[str, Any]:
    """Update a DNS resource (admins only).

    :param fqdn: New hostname with domain.
    :param ip_addresses: The addresses it resolves to from now on (space separated).
    :param address_ttl: TTL of its address records.
    """
    _admin(call, "update a DNS resource")
    state = call.emulator.state
    record = _get_record(call)
    p = call.params
    if p.get("fqdn"):
        record.name, target = _split_name(state, p["fqdn"])
        record.domain_id = target.id
    if "ip_addresses" in p:
        record.ip_addresses = _addresses(call)
    if "address_ttl" in p:
        record.address_ttl = _ttl(call, "address_ttl")
    state.save_dns_resource(record)
    return render.dns_resource(record, state)


@dnsresource.action("DELETE")
def delete_dnsresource(call: Call) -> web.Response:
    """Delete a DNS resource (admins only)."""
    _admin(call, "delete a DNS resource")
    state = call.emulator.state
    state.delete_dns_resource(_get_record(call).id)
    return web.Response(status=204)
