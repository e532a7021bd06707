"""The `describe/` document, generated from the handler declarations.

python-libmaas calls each handler's absolute `uri`, so URIs are built from the request's
scheme and Host, as MAAS does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from maas_emulator.api.routing import API_ROOT, Resource


def describe(resources: list[Resource], base_url: str) -> dict[str, Any]:
    handlers = [_handler(r, base_url) for r in resources]
    document = {
        "doc": "MAAS API",
        "handlers": handlers,
        "resources": [
            {
                "name": h["name"],
                "anon": h if r.anon else None,
                "auth": None if r.anon else h,
            }
            for r, h in zip(resources, handlers, strict=True)
        ],
    }
    # Like MAAS, the hash ignores the host so every client sees the same API version.
    digest = hashlib.sha1(
        json.dumps(describe_shape(resources), sort_keys=True).encode(), usedforsecurity=False
    )
    document["hash"] = digest.hexdigest()
    return document


def describe_shape(resources: list[Resource]) -> list[Any]:
    return [
        (r.name, r.path, sorted((a.method, a.op or "") for a in r.actions.values()))
        for r in resources
    ]


def _handler(resource: Resource, base_url: str) -> dict[str, Any]:
    path = API_ROOT + resource.path
    return {
        "name": resource.name,
        "doc": resource.doc,
        "params": resource.params,
        "path": path,
        "uri": base_url + path,
        "actions": [
            {
                "name": a.name,
                "method": a.method,
                "op": a.op,
                "restful": a.restful,
                "doc": a.doc,
            }
            for a in resource.actions.values()
        ],
    }
