"""`version/`, `users/` and `events/`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from maas_emulator.api import render
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, NotFound
from maas_emulator.models import EventLevel

version = Resource("VersionHandler", "version/", "Information about this MAAS instance.", anon=True)
users = Resource("UsersHandler", "users/", "Manage the user accounts of this MAAS.")
user = Resource("UserHandler", "users/{username}/", "Manage a user account.")
events = Resource("EventsHandler", "events/", "Retrieve filtered node events.")

MAAS_VERSION = "2.9.2"
CAPABILITIES = [
    "networks-management",
    "static-ipaddresses",
    "ipv6-deployment-ubuntu",
    "devices-management",
    "storage-deployment-ubuntu",
    "network-deployment-ubuntu",
    "bridging-interface-ubuntu",
    "bridging-automatic-ubuntu",
    "authenticate-api",
]
DEFAULT_EVENT_LIMIT = 100
MAX_EVENT_LIMIT = 1000


@version.action("GET")
def read_version(call: Call) -> dict[str, Any]:
    """Version and capabilities of this MAAS."""
    return {
        "version": MAAS_VERSION,
        "subversion": "emulated",
        "capabilities": CAPABILITIES,
    }


@users.action("GET", "whoami")
def whoami(call: Call) -> dict[str, Any]:
    """The user making the request."""
    return render.user(call.user)


@users.action("GET")
def read_users(call: Call) -> list[dict[str, Any]]:
    """List users."""
    return [render.user(u) for u in call.emulator.state.users.values()]


@user.action("GET")
def read_user(call: Call) -> dict[str, Any]:
    """Read a user."""
    found = call.emulator.state.users.get(call.path["username"])
    if found is None:
        raise NotFound("No User matches the given query.")
    return render.user(found)


@events.action("GET", "query")
def query_events(call: Call) -> dict[str, Any]:
    """Events, newest first, in pages linked by `prev_uri` (older) and `next_uri` (newer).

    :param hostname: Only events of these hostnames (repeatable).
    :param id: Only events of these system ids (repeatable).
    :param agent_name: Only events of machines with this agent name.
    :param zone: Only events of machines in this zone.
    :param owner: Only events of machines owned by this user.
    :param level: Minimum level (AUDIT, DEBUG, INFO, WARNING, ERROR, CRITICAL); INFO by default.
    :param limit: Page size, 100 by default, at most 1000.
    :param before: Only events with an id lower than this.
    :param after: Only events with an id higher than this.
    """
    p = call.params
    state = call.emulator.state
    try:
        level = EventLevel[p.get("level", "INFO").upper()]
    except KeyError as error:
        raise BadRequest({"level": [f"Invalid level: {p['level']!r}."]}) from error
    before, after, limit = (_int(p, key) for key in ("before", "after", "limit"))
    if before is not None and after is not None:
        raise BadRequest(
            "There is undetermined behaviour when both 'after' and 'before' are specified."
        )
    limit = min(limit or DEFAULT_EVENT_LIMIT, MAX_EVENT_LIMIT)
    system_ids = None
    node_filters = ("hostname", "id", "agent_name", "zone", "owner")
    if any(key in p for key in node_filters):
        hostnames = set(p.getall("hostname", []))
        ids = set(p.getall("id", []))
        system_ids = [
            m.system_id
            for m in state.machines.values()
            if (not hostnames or m.hostname in hostnames)
            and (not ids or m.system_id in ids)
            and ("agent_name" not in p or m.agent_name == p["agent_name"])
            and ("zone" not in p or m.zone == p["zone"])
            and ("owner" not in p or m.owner == p["owner"])
        ]
    found = state.store.query_events(
        system_ids=system_ids, min_level=level, before=before, after=after, limit=limit
    )
    if found:
        oldest, newest = found[-1].id, found[0].id
    else:
        oldest = before if before is not None else (after + 1 if after is not None else 1)
        newest = oldest - 1
    base = [(k, v) for k, v in p.items() if k not in ("before", "after")]
    page_uri = f"{call.request.scheme}://{call.request.host}{call.request.path}?"
    return {
        "count": len(found),
        "events": [render.event(e) for e in found],
        "prev_uri": page_uri + urlencode([*base, ("before", str(oldest))]),
        "next_uri": page_uri + urlencode([*base, ("after", str(newest))]),
    }


def _int(params: Any, key: str) -> int | None:
    text = params.get(key)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError as error:
        raise BadRequest({key: ["Enter a whole number."]}) from error
