"""`zones/`, `zones/{name}/`, `resourcepools/` and `resourcepool/{id}/`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from maas_emulator.api import render
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, Forbidden, NotFound
from maas_emulator.models import ResourcePool, Zone

zones = Resource("ZonesHandler", "zones/", "Manage physical zones.")
zone = Resource("ZoneHandler", "zones/{name}/", "Manage a physical zone.")
pools = Resource("ResourcePoolsHandler", "resourcepools/", "Manage resource pools.")
pool = Resource("ResourcePoolHandler", "resourcepool/{id}/", "Manage a resource pool.")

DEFAULT = "default"


def _admin(call: Call) -> None:
    if not call.user.is_admin:
        raise Forbidden("You do not have permission to perform this action.")


def _new_name(call: Call, taken: dict[str, Any], kind: str) -> str:
    name = call.params.get("name", "")
    if not name:
        raise BadRequest({"name": ["This field is required."]})
    if name in taken:
        raise BadRequest({"name": [f"{kind} with this Name already exists."]})
    return name


def _get_zone(call: Call) -> Zone:
    found = call.emulator.state.zones.get(call.path["name"])
    if found is None:
        raise NotFound("No Zone matches the given query.")
    return found


def _get_pool(call: Call) -> ResourcePool:
    key = call.path["id"]
    for p in call.emulator.state.pools.values():
        if str(p.id) == key or p.name == key:
            return p
    raise NotFound("No ResourcePool matches the given query.")


@zones.action("GET")
def read_zones(call: Call) -> list[dict[str, Any]]:
    """List zones."""
    return [render.zone(z) for z in call.emulator.state.zones.values()]


@zones.action("POST")
def create_zone(call: Call) -> dict[str, Any]:
    """Create a zone (admins only).

    :param name: The zone's name.
    :param description: A description.
    """
    _admin(call)
    state = call.emulator.state
    name = _new_name(call, state.zones, "Zone")
    new = Zone(
        id=state.next_id(state.zones), name=name, description=call.params.get("description", "")
    )
    state.save_zone(new)
    return render.zone(new)


@zone.action("GET")
def read_zone(call: Call) -> dict[str, Any]:
    """Read a zone."""
    return render.zone(_get_zone(call))


@zone.action("PUT")
def update_zone(call: Call) -> dict[str, Any]:
    """Update a zone's description (admins only)."""
    _admin(call)
    current = _get_zone(call)
    current.description = call.params.get("description", current.description)
    call.emulator.state.save_zone(current)
    return render.zone(current)


@zone.action("DELETE")
def delete_zone(call: Call) -> web.Response:
    """Delete a zone (admins only); its machines move to the default zone."""
    _admin(call)
    state = call.emulator.state
    name = _get_zone(call).name
    if name == DEFAULT:
        raise BadRequest("This zone is the default zone, it cannot be deleted.")
    for m in state.machines.values():
        if m.zone == name:
            m.zone = DEFAULT
            state.save_machine(m)
    state.delete_zone(name)
    return web.Response(status=204)


@pools.action("GET")
def read_pools(call: Call) -> list[dict[str, Any]]:
    """List resource pools."""
    return [render.pool(p) for p in call.emulator.state.pools.values()]


@pools.action("POST")
def create_pool(call: Call) -> dict[str, Any]:
    """Create a resource pool (admins only).

    :param name: The pool's name.
    :param description: A description.
    """
    _admin(call)
    state = call.emulator.state
    name = _new_name(call, state.pools, "Resource pool")
    new = ResourcePool(
        id=state.next_id(state.pools), name=name, description=call.params.get("description", "")
    )
    state.save_pool(new)
    return render.pool(new)


@pool.action("GET")
def read_pool(call: Call) -> dict[str, Any]:
    """Read a resource pool."""
    return render.pool(_get_pool(call))


@pool.action("PUT")
def update_pool(call: Call) -> dict[str, Any]:
    """Update a resource pool's description (admins only)."""
    _admin(call)
    current = _get_pool(call)
    current.description = call.params.get("description", current.description)
    call.emulator.state.save_pool(current)
    return render.pool(current)


@pool.action("DELETE")
def delete_pool(call: Call) -> web.Response:
    """Delete a resource pool (admins only); it must hold no machines."""
    _admin(call)
    state = call.emulator.state
    name = _get_pool(call).name
    if name == DEFAULT:
        raise BadRequest("This is the default pool, it cannot be deleted.")
    if any(m.pool == name for m in state.machines.values()):
        raise BadRequest("Pool has machines in it.")
    state.delete_pool(name)
    return web.Response(status=204)
