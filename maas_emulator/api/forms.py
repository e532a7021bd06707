"""Request parameters: the query string plus a form body, as MAAS's Piston reads them.

python-libmaas sends every POST/PUT body as multipart/form-data whose parts are base64
encoded; aiohttp's generic parser is both slower and unaware of that, hence this small one.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from maas_emulator.errors import BadRequest


async def read_params(request: web.Request) -> MultiDictProxy[str]:
    params: MultiDict[str] = MultiDict(request.query)
    if request.method in ("POST", "PUT") and request.can_read_body:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            params.extend(_parse_multipart(body, content_type))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.extend(parse_qsl(body.decode(), keep_blank_values=True))
    return MultiDictProxy(params)


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    boundary = _header_param(content_type, "boundary")
    if boundary is None:
        raise BadRequest("Multipart body without a boundary.")
    delimiter = b"--" + boundary.encode()
    fields = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            key, _, val = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = val.strip()
        name = _header_param(headers.get("content-disposition", ""), "name")
        if name is None:
            continue
        if headers.get("content-transfer-encoding", "").lower() == "base64":
            try:
                value = base64.b64decode(value)
            except binascii.Error as error:
                raise BadRequest(f"Undecodable base64 part {name!r}.") from error
        fields.append((name, value.decode("utf-8", "replace")))
    return fields


def _header_param(header: str, key: str) -> str | None:
    for item in header.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.lower() == key:
            return value.strip('"')
    return None


def flag(params: MultiDictProxy[str], name: str) -> bool:
    return params.get(name, "").strip().lower() in ("true", "1", "yes", "on")


def listed(params: MultiDictProxy[str], name: str) -> list[str]:
    """All values of a repeatable parameter, also split on commas as MAAS does for tags."""
    return [item.strip() for value in params.getall(name, []) for item in value.split(",") if item]
