"""`tags/` and `tags/{name}/`."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from maas_emulator.api import render
from maas_emulator.api.forms import listed
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, Forbidden, NotFound
from maas_emulator.models import Tag

tags = Resource("TagsHandler", "tags/", "Manage all tags known to MAAS.")
tag = Resource("TagHandler", "tags/{name}/", "Manage a tag.")

_NAME = re.compile(r"^[\w-]+$")


def _admin(call: Call) -> None:
    if not call.user.is_admin:
        raise Forbidden("You do not have permission to manage tags.")


def _get(call: Call) -> Tag:
    found = call.emulator.state.tags.get(call.path["name"])
    if found is None:
        raise NotFound("No Tag matches the given query.")
    return found


@tags.action("GET")
def read_tags(call: Call) -> list[dict[str, Any]]:
    """List all tags."""
    return [render.tag(t) for t in call.emulator.state.tags.values()]


@tags.action("POST")
def create_tag(call: Call) -> dict[str, Any]:
    """Create a tag (admins only).

    :param name: The tag's name.
    :param comment: A description.
    :param definition: An XPath expression (stored, not evaluated by the emulator).
    :param kernel_opts: Kernel options for machines with this tag.
    """
    _admin(call)
    name = call.params.get("name", "")
    if not _NAME.match(name):
        raise BadRequest({"name": ["Invalid character in tag name."]})
    if name in call.emulator.state.tags:
        raise BadRequest({"name": ["Tag with this Name already exists."]})
    new = Tag(
        name=name,
        comment=call.params.get("comment", ""),
        definition=call.params.get("definition", ""),
        kernel_opts=call.params.get("kernel_opts") or None,
    )
    call.emulator.state.save_tag(new)
    return render.tag(new)


@tag.action("GET")
def read_tag(call: Call) -> dict[str, Any]:
    """Read a tag."""
    return render.tag(_get(call))


@tag.action("PUT")
def update_tag(call: Call) -> dict[str, Any]:
    """Update a tag's comment, definition or kernel options (admins only)."""
    _admin(call)
    current = _get(call)
    changed = current.model_copy(
        update={
            k: v for k, v in call.params.items() if k in ("comment", "definition", "kernel_opts")
        }
    )
    call.emulator.state.save_tag(changed)
    return render.tag(changed)


@tag.action("DELETE")
def delete_tag(call: Call) -> web.Response:
    """Delete a tag (admins only); machines lose it."""
    _admin(call)
    call.emulator.state.delete_tag(_get(call).name)
    return web.Response(status=204)


@tag.action("POST", "update_nodes")
def update_nodes(call: Call) -> dict[str, int]:
    """Add the tag to and remove it from machines (admins only).

    :param add: System ids to tag (repeatable).
    :param remove: System ids to untag (repeatable).
    """
    _admin(call)
    name = _get(call).name
    state = call.emulator.state
    added = removed = 0
    for system_id in listed(call.params, "add"):
        m = state.machines.get(system_id)
        if m is not None and name not in m.tags:
            m.tags.append(name)
            state.save_machine(m)
            added += 1
    for system_id in listed(call.params, "remove"):
        m = state.machines.get(system_id)
        if m is not None and name in m.tags:
            m.tags.remove(name)
            state.save_machine(m)
            removed += 1
    return {"added": added, "removed": removed}


@tag.action("GET", "machines")
def tag_machines(call: Call) -> list[dict[str, Any]]:
    """List the machines with this tag."""
    name = _get(call).name
    state = call.emulator.state
    return [render.machine(m, state) for m in state.machines.values() if name in m.tags]
