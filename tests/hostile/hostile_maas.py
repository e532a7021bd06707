"""A MAAS that misbehaves: in front of a real emulator, it answers garbage, 5xx or nothing.

`describe/` can be passed through to the emulator (so python-libmaas connects and the fault
hits the real calls) or misbehave too (so even connecting fails).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

import aiohttp
from aiohttp import web

from tests.support.ports import free_port


class Mode(StrEnum):
    HTML = "html"  # 200 with an HTML error page, as a misrouted reverse proxy answers
    WRONG_JSON = "wrong-json"  # 200 with JSON of the wrong shape
    TRUNCATED = "truncated"  # 200 with half a JSON document
    ERROR_500 = "500"
    ERROR_503 = "503"
    HANG = "hang"  # accepts the request and never answers


GARBAGE = {
    Mode.HTML: ("<html><body><h1>It works!</h1></body></html>", "text/html"),
    Mode.WRONG_JSON: ('{"unexpected": [1, 2, 3], "status": "maybe"}', "application/json"),
    Mode.TRUNCATED: ('[{"system_id": "abc", "hostname": "x', "application/json"),
}


def hostile_app(upstream: str, mode: Mode, *, describe_too: bool) -> web.Application:
    """`upstream` is the real emulator's http://host:port."""

    async def handle(request: web.Request) -> web.StreamResponse:
        anonymous = request.path.endswith(("/describe/", "/version/"))
        if anonymous and not describe_too:
            return await _forward(request, upstream)
        if mode == Mode.HANG:
            await asyncio.sleep(3600)
        if mode in (Mode.ERROR_500, Mode.ERROR_503):
            return web.Response(status=int(mode.value), text="Internal Server Error")
        body, content_type = GARBAGE[mode]
        return web.Response(text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _forward(request: web.Request, upstream: str) -> web.Response:
    # The Host header stays the proxy's, so the describe document's URIs point back here.
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            request.method,
            upstream + request.path_qs,
            headers={"Host": request.host, **dict(request.headers)},
            data=await request.read(),
        ) as answer,
    ):
        return web.Response(
            status=answer.status,
            body=await answer.read(),
            content_type=answer.content_type,
        )


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve on a free loopback port; yields http://127.0.0.1:PORT."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
