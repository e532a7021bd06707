"""MAAS JSON shapes of the emulator's objects."""

from __future__ import annotations

import time
from typing import Any

from maas_emulator.api.routing import API_ROOT
from maas_emulator.models import (
    BootResource,
    DnsResource,
    Domain,
    Event,
    IPAllocType,
    Machine,
    ResourcePool,
    StaticIP,
    Subnet,
    Tag,
    User,
    Zone,
)
from maas_emulator.state import State


def zone(z: Zone) -> dict[str, Any]:
    return {
        "id": z.id,
        "name": z.name,
        "description": z.description,
        "resource_uri": f"{API_ROOT}zones/{z.name}/",
    }


def pool(p: ResourcePool) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "resource_uri": f"{API_ROOT}resourcepool/{p.id}/",
    }


def tag(t: Tag) -> dict[str, Any]:
    return {
        "name": t.name,
        "comment": t.comment,
        "definition": t.definition,
        "kernel_opts": t.kernel_opts,
        "resource_uri": f"{API_ROOT}tags/{t.name}/",
    }


def user(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "email": u.email,
        "is_superuser": u.is_admin,
        "is_local": True,
        "resource_uri": f"{API_ROOT}users/{u.username}/",
    }


_DOMAIN = {
    "id": 0,
    "name": "maas",
    "authoritative": True,
    "is_default": True,
    "ttl": None,
    "resource_record_count": 0,
    "resource_uri": f"{API_ROOT}domains/0/",
}


def machine(m: Machine, state: State) -> dict[str, Any]:
    """A machine as MAAS shows it; `agent_name` and user data are never shown."""
    return {
        "system_id": m.system_id,
        "hostname": m.hostname,
        "fqdn": f"{m.hostname}.{m.domain}",
        "domain": _DOMAIN,
        "architecture": m.architecture,
        "cpu_count": m.cpu_count,
        "memory": m.memory,
        "storage": m.storage,
        "swap_size": None,
        "status": int(m.status),
        "status_name": m.status.label,
        "status_message": m.status_message,
        "status_action": "",
        "osystem": m.osystem,
        "distro_series": m.distro_series,
        "hwe_kernel": m.hwe_kernel,
        "min_hwe_kernel": None,
        "owner": m.owner,
        "owner_data": m.owner_data,
        "zone": zone(state.zones[m.zone]),
        "pool": pool(state.pools[m.pool]),
        "tag_names": list(m.tags),
        "ip_addresses": list(m.ip_addresses),
        "power_state": m.power_state.value,
        "power_type": "ipmi",
        "node_type": 0,
        "node_type_name": "Machine",
        "netboot": m.status != 6,
        "locked": False,
        "disable_ipv4": False,
        "ephemeral_deploy": m.ephemeral_deploy,
        "description": "",
        "pod": None,
        "boot_interface": None,
        "boot_disk": None,
        "interface_set": [],
        "blockdevice_set": [],
        "physicalblockdevice_set": [],
        "virtualblockdevice_set": [],
        "raids": [],
        "volume_groups": [],
        "bcaches": [],
        "cache_sets": [],
        "special_filesystems": [],
        "resource_uri": f"{API_ROOT}machines/{m.system_id}/",
    }


def event(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "node": e.system_id,
        "hostname": e.hostname,
        "username": e.username,
        "level": e.level.name,
        "created": time.strftime("%a, %d %b. %Y %H:%M:%S", time.gmtime(e.created)),
        "type": e.type,
        "description": e.description,
    }


_ALLOC_TYPE_NAMES = {
    IPAllocType.AUTO: "Automatic",
    IPAllocType.STICKY: "Static",
    IPAllocType.USER_RESERVED: "User reserved",
    IPAllocType.DHCP: "DHCP",
    IPAllocType.DISCOVERED: "Observed",
}


def _timestamp(epoch: float) -> str:
    return time.strftime("%a, %d %b. %Y %H:%M:%S", time.gmtime(epoch))


def subnet(s: Subnet) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "cidr": s.cidr,
        "vlan": {
            "id": s.vlan_id,
            "vid": s.vid,
            "name": "untagged",
            "fabric": "fabric-0",
            "fabric_id": 0,
            "mtu": 1500,
            "dhcp_on": True,
            "external_dhcp": None,
            "primary_rack": None,
            "secondary_rack": None,
            "relay_vlan": None,
            "space": s.space,
            "resource_uri": f"{API_ROOT}vlans/{s.vlan_id}/",
        },
        "space": s.space,
        "gateway_ip": s.gateway_ip,
        "dns_servers": list(s.dns_servers),
        "rdns_mode": 2,
        "allow_proxy": True,
        "active_discovery": False,
        "managed": s.managed,
        "resource_uri": f"{API_ROOT}subnets/{s.id}/",
    }


def ip_address(a: StaticIP, state: State) -> dict[str, Any]:
    owner = state.users.get(a.owner)
    return {
        "alloc_type": int(a.alloc_type),
        "alloc_type_name": _ALLOC_TYPE_NAMES[a.alloc_type],
        "created": _timestamp(a.created),
        "ip": a.ip,
        "subnet": subnet(state.subnets[a.subnet_id]),
        "owner": user(owner) if owner is not None else None,
        "interface_set": [],
        "resource_uri": f"{API_ROOT}ipaddresses/",
    }


def domain(d: Domain, state: State) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "authoritative": d.authoritative,
        "ttl": d.ttl,
        "is_default": d.is_default,
        "resource_record_count": sum(
            len(r.ip_addresses) for r in state.dns_resources.values() if r.domain_id == d.id
        ),
        "resource_uri": f"{API_ROOT}domains/{d.id}/",
    }


def dns_resource(r: DnsResource, state: State) -> dict[str, Any]:
    machine_ips = {m.address for m in state.machines.values() if m.ip_addresses}
    addresses = []
    for ip in r.ip_addresses:
        reserved = state.ip_addresses.get(ip)
        kind = (
            reserved.alloc_type
            if reserved is not None
            else IPAllocType.AUTO
            if ip in machine_ips
            else IPAllocType.USER_RESERVED
        )
        addresses.append(
            {"ip": ip, "alloc_type": int(kind), "alloc_type_name": _ALLOC_TYPE_NAMES[kind]}
        )
    return {
        "id": r.id,
        "fqdn": f"{r.name}.{state.domains[r.domain_id].name}",
        "address_ttl": r.address_ttl,
        "ip_addresses": addresses,
        "resource_records": [],
        "resource_uri": f"{API_ROOT}dnsresources/{r.id}/",
    }


def boot_resource(b: BootResource) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": b.id,
        "type": b.type,
        "name": b.name,
        "architecture": b.architecture,
        "resource_uri": f"{API_ROOT}boot-resources/{b.id}/",
    }
    if b.subarches is not None:
        shown["subarches"] = b.subarches
    return shown
