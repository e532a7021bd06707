"""MAAS JSON shapes of the emulator's objects."""

from __future__ import annotations

import time
from typing import Any

from maas_emulator.api.routing import API_ROOT
from maas_emulator.models import Event, Machine, ResourcePool, Tag, User, Zone
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
