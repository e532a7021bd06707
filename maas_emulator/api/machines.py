"""`machines/` and `machines/{system_id}/`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from maas_emulator.api import render
from maas_emulator.api.constraints import no_match_message, parse_constraints
from maas_emulator.api.forms import flag, listed
from maas_emulator.api.images import deployable_image
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, Conflict, Forbidden, NotFound
from maas_emulator.models import Machine, NodeStatus, User
from maas_emulator.statemachine import ALREADY_RELEASED, RELEASABLE

machines = Resource("MachinesHandler", "machines/", "Manage the collection of all machines.")
machine = Resource("MachineHandler", "machines/{system_id}/", "Manage an individual machine.")

DEFAULT_OSYSTEM = "ubuntu"
DEFAULT_SERIES = "jammy"


def can_view(user: User, m: Machine) -> bool:
    return user.is_admin or m.owner is None or m.owner == user.username


def can_edit(user: User, m: Machine) -> bool:
    return user.is_admin or m.owner == user.username


def _get(call: Call, *, edit: bool = False) -> Machine:
    m = call.emulator.state.machines.get(call.path["system_id"])
    if m is None:
        raise NotFound("No Machine matches the given query.")
    allowed = can_edit(call.user, m) if edit else can_view(call.user, m)
    if not allowed:
        raise Forbidden("You do not have permission to access this machine.")
    return m


def _shown(call: Call, items: Iterable[Machine]) -> list[dict[str, Any]]:
    state = call.emulator.state
    return [render.machine(m, state) for m in items]


def _one(call: Call, m: Machine) -> dict[str, Any]:
    return render.machine(m, call.emulator.state)


@machines.action("GET")
def read_machines(call: Call) -> list[dict[str, Any]]:
    """List machines visible to the caller.

    :param hostname: Only machines with these hostnames (repeatable).
    :param id: Only machines with these system ids (repeatable).
    :param agent_name: Only machines allocated with this agent name.
    :param zone: Only machines in this zone.
    :param pool: Only machines in this resource pool.
    :param status: Only machines in this status (keyword such as "deployed", or code).
    :param owner: Only machines owned by this user.
    """
    p = call.params
    hostnames = {h.split(".", 1)[0] for h in p.getall("hostname", [])}
    ids = set(p.getall("id", []))
    try:
        status = NodeStatus.parse(p["status"]) if "status" in p else None
    except (KeyError, ValueError) as error:
        raise BadRequest({"status": [f"Invalid status: {p['status']!r}."]}) from error
    selected = [
        m
        for m in call.emulator.state.machines.values()
        if can_view(call.user, m)
        and (not hostnames or m.hostname in hostnames)
        and (not ids or m.system_id in ids)
        and ("agent_name" not in p or m.agent_name == p["agent_name"])
        and ("zone" not in p or m.zone == p["zone"])
        and ("pool" not in p or m.pool == p["pool"])
        and (status is None or m.status == status)
        and ("owner" not in p or m.owner == p["owner"])
    ]
    return _shown(call, selected)


@machines.action("POST", "allocate")
def allocate(call: Call) -> dict[str, Any]:
    """Allocate an available machine matching the constraints.

    :param name: Hostname or FQDN of the machine.
    :param system_id: System id of the machine.
    :param arch: Architecture(s), e.g. amd64 or amd64/generic.
    :param cpu_count: Minimum number of CPUs.
    :param mem: Minimum memory in MiB.
    :param tags: Tags the machine must all have.
    :param not_tags: Tags the machine must not have.
    :param zone: Zone the machine must be in.
    :param not_in_zone: Zones the machine must not be in.
    :param pool: Resource pool the machine must be in.
    :param not_in_pool: Resource pools the machine must not be in.
    :param agent_name: Agent name stored on the machine, to find it again.
    :param comment: Comment for the event log.
    :param dry_run: Only answer the machine that would be allocated.

    Returns 409 when no available machine matches.
    """
    state = call.emulator.state
    constraints = parse_constraints(call.params, state)
    candidate = next(
        (
            m
            for m in state.machines.values()
            if m.status == NodeStatus.READY and m.owner is None and constraints.matches(m)
        ),
        None,
    )
    if candidate is None:
        raise Conflict(no_match_message(call.params, constraints))
    if not flag(call.params, "dry_run"):
        call.emulator.lifecycle.allocate(
            candidate,
            call.user.username,
            agent_name=call.params.get("agent_name", ""),
            comment=call.params.get("comment", ""),
        )
    return _one(call, candidate)


@machines.action("POST", "release", name="release")
def release_many(call: Call) -> list[str]:
    """Release several machines at once.

    :param machines: System ids of the machines (repeatable).
    :param comment: Comment for the event log.
    """
    state = call.emulator.state
    ids = listed(call.params, "machines")
    unknown = [i for i in ids if i not in state.machines]
    if unknown:
        raise BadRequest(f"Unknown machine(s): {', '.join(unknown)}.")
    found = [state.machines[i] for i in ids]
    denied = [m.system_id for m in found if not can_edit(call.user, m)]
    if denied:
        raise Forbidden(
            "You don't have the required permission to release the following machine(s): "
            + ", ".join(denied)
            + "."
        )
    stuck = [m.system_id for m in found if m.status not in RELEASABLE | ALREADY_RELEASED]
    if stuck:
        raise Conflict(
            "Machine(s) cannot be released in their current state: " + ", ".join(stuck) + "."
        )
    comment = call.params.get("comment", "")
    for m in found:
        call.emulator.lifecycle.release(m, erase=None, comment=comment)
    return ids


@machines.action("GET", "list_allocated")
def list_allocated(call: Call) -> list[dict[str, Any]]:
    """List machines allocated to the caller."""
    me = call.user.username
    return _shown(call, (m for m in call.emulator.state.machines.values() if m.owner == me))


@machine.action("GET")
def read_machine(call: Call) -> dict[str, Any]:
    """Read a machine."""
    return _one(call, _get(call))


@machine.action("POST", "deploy")
def deploy(call: Call) -> dict[str, Any]:
    """Deploy an operating system; a Ready machine is allocated to the caller first.

    :param osystem: Operating system to deploy: ubuntu (default) or custom.
    :param distro_series: Series to deploy ("jammy", or with the osystem: "custom/k8s").
    :param hwe_kernel: Kernel to deploy.
    :param user_data: Base64-encoded cloud-init user data.
    :param agent_name: Agent name to store on the machine.
    :param ephemeral_deploy: Deploy to memory only.
    :param comment: Comment for the event log.
    """
    m = _get(call)
    if m.owner is not None and not can_edit(call.user, m):
        raise Forbidden("You do not have permission to deploy this machine.")
    user_data = call.params.get("user_data") or None
    if user_data is not None:
        user_data = "".join(user_data.split())
        try:
            base64.b64decode(user_data, validate=True)
        except binascii.Error as error:
            raise BadRequest({"user_data": ["Invalid base64 user data."]}) from error
    osystem, series = deployable_image(
        call.emulator.state,
        call.params.get("osystem") or DEFAULT_OSYSTEM,
        call.params.get("distro_series") or DEFAULT_SERIES,
    )
    call.emulator.lifecycle.deploy(
        m,
        call.user.username,
        osystem=osystem,
        distro_series=series,
        hwe_kernel=call.params.get("hwe_kernel") or None,
        user_data_b64=user_data,
        agent_name=call.params.get("agent_name"),
        ephemeral=flag(call.params, "ephemeral_deploy"),
        comment=call.params.get("comment", ""),
    )
    return _one(call, m)


@machine.action("POST", "release")
def release(call: Call) -> dict[str, Any]:
    """Release a machine; releasing a released machine does nothing.

    :param erase: Erase the disks.
    :param secure_erase: Erase with the drives' secure erase.
    :param quick_erase: Wipe only the start and end of the disks.
    :param comment: Comment for the event log.
    :param force: Release even a machine in a pod (accepted, no effect here).
    """
    m = _get(call, edit=True)
    p = call.params
    erase = None
    if flag(p, "erase") or flag(p, "secure_erase") or flag(p, "quick_erase"):
        erase = (
            "secure" if flag(p, "secure_erase") else "quick" if flag(p, "quick_erase") else "normal"
        )
    call.emulator.lifecycle.release(m, erase=erase, comment=p.get("comment", ""))
    return _one(call, m)


@machine.action("POST", "set_owner_data")
def set_owner_data(call: Call) -> dict[str, Any]:
    """Set (or, with an empty value, delete) owner data keys on an allocated machine."""
    m = _get(call, edit=True)
    if m.owner is None:
        raise Conflict(f"Can't set owner data: node {m.hostname} is not allocated.")
    for key, value in call.params.items():
        if key == "op":
            continue
        if value == "":
            m.owner_data.pop(key, None)
        else:
            m.owner_data[key] = value
    call.emulator.state.save_machine(m)
    return _one(call, m)


@machine.action("POST", "abort")
def abort(call: Call) -> dict[str, Any]:
    """Abort the machine's current action (deploying or disk erasing)."""
    m = _get(call, edit=True)
    call.emulator.lifecycle.abort(m, call.params.get("comment", ""))
    return _one(call, m)


@machine.action("POST", "power_on")
def power_on(call: Call) -> dict[str, Any]:
    """Power on an allocated machine."""
    m = _get(call, edit=True)
    call.emulator.lifecycle.power(m, call.user.username, True, call.params.get("comment", ""))
    return _one(call, m)


@machine.action("POST", "power_off")
def power_off(call: Call) -> dict[str, Any]:
    """Power off the machine.

    :param stop_mode: "hard" or "soft".
    """
    m = _get(call, edit=True)
    call.emulator.lifecycle.power(m, call.user.username, False, call.params.get("comment", ""))
    return _one(call, m)


@machine.action("GET", "query_power_state")
def query_power_state(call: Call) -> dict[str, str]:
    """Ask the machine's BMC for its power state."""
    return {"state": _get(call).power_state.value}


@machine.action("POST", "mark_broken")
def mark_broken(call: Call) -> dict[str, Any]:
    """Mark the machine broken."""
    m = _get(call, edit=True)
    call.emulator.lifecycle.mark_broken(m, call.params.get("comment", ""))
    return _one(call, m)


@machine.action("POST", "mark_fixed")
def mark_fixed(call: Call) -> dict[str, Any]:
    """Mark a broken machine fixed (admins only)."""
    m = _get(call)
    if not call.user.is_admin:
        raise Forbidden("Only administrators can mark machines fixed.")
    call.emulator.lifecycle.mark_fixed(m, call.params.get("comment", ""))
    return _one(call, m)


@machine.action("PUT")
def update(call: Call) -> dict[str, Any]:
    """Update a machine (owner or admin): hostname, zone or pool; hardware fields for admins.

    :param hostname: New hostname.
    :param zone: Zone name.
    :param pool: Resource pool name.
    :param cpu_count: CPU count (admins).
    :param memory: Memory in MiB (admins).
    """
    m = _get(call, edit=True)
    state = call.emulator.state
    p = call.params
    errors: dict[str, list[str]] = {}
    if "zone" in p and p["zone"] not in state.zones:
        errors["zone"] = [f"No such zone: '{p['zone']}'."]
    if "pool" in p and p["pool"] not in state.pools:
        errors["pool"] = [f"No such pool: '{p['pool']}'."]
    hardware = {k: p[k] for k in ("cpu_count", "memory") if k in p}
    if hardware and not call.user.is_admin:
        raise Forbidden("Only administrators can change hardware details.")
    for key, text in hardware.items():
        if not text.isdigit():
            errors[key] = ["Enter a whole number."]
    if errors:
        raise BadRequest(errors)
    m.hostname = p.get("hostname", m.hostname)
    m.zone = p.get("zone", m.zone)
    m.pool = p.get("pool", m.pool)
    m.cpu_count = int(hardware.get("cpu_count", m.cpu_count))
    m.memory = int(hardware.get("memory", m.memory))
    state.save_machine(m)
    return _one(call, m)
