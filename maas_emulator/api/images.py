"""`boot-resources/` and `boot-resources/{id}/`: the images machines can deploy."""

from __future__ import annotations

from typing import Any

from maas_emulator.api import render
from maas_emulator.api.routing import Call, Resource
from maas_emulator.errors import BadRequest, NotFound
from maas_emulator.state import State

boot_resources = Resource("BootResourcesHandler", "boot-resources/", "Manage the boot resources.")
boot_resource = Resource("BootResourceHandler", "boot-resources/{id}/", "Manage a boot resource.")

_TYPES = {"synced": "Synced", "uploaded": "Uploaded", "generated": "Generated"}


@boot_resources.action("GET")
def read_boot_resources(call: Call) -> list[dict[str, Any]]:
    """List boot resources.

    :param type: all (default), synced, uploaded or generated.
    """
    kind = call.params.get("type", "all").lower()
    if kind != "all" and kind not in _TYPES:
        raise BadRequest(f"'{kind}' is not a valid boot resource type.")
    return [
        render.boot_resource(b)
        for b in call.emulator.state.boot_resources.values()
        if kind == "all" or b.type == _TYPES[kind]
    ]


@boot_resource.action("GET")
def read_boot_resource(call: Call) -> dict[str, Any]:
    """Read a boot resource."""
    key = call.path["id"]
    found = call.emulator.state.boot_resources.get(int(key)) if key.isdigit() else None
    if found is None:
        raise NotFound("No BootResource matches the given query.")
    return {**render.boot_resource(found), "sets": {}}


def deployable_image(state: State, osystem: str, distro_series: str) -> tuple[str, str]:
    """The (osystem, series) a deploy asks for, refused as MAAS does when no image has it.

    `distro_series` may carry the osystem itself ("ubuntu/jammy", "custom/k8s").
    """
    if "/" in distro_series:
        osystem, distro_series = distro_series.split("/", 1)
    images = sorted(b.name for b in state.boot_resources.values())
    systems = sorted({name.split("/", 1)[0] for name in images})
    if osystem not in systems:
        raise BadRequest(
            {"osystem": [f"Select a valid choice. {osystem} is not one of the available choices."]}
        )
    if f"{osystem}/{distro_series}" not in images:
        choices = ", ".join(f"'{name}'" for name in images)
        raise BadRequest(
            {
                "distro_series": [
                    f"'{osystem}/{distro_series}' is not a valid distro_series.  "
                    f"It should be one of: {choices}."
                ]
            }
        )
    return osystem, distro_series
