"""A tiny HTTP forward proxy on a loopback port that records the requests it relays.

One request per connection (it forces `Connection: close`), which is all the agent tests need.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from tests.support.ports import free_port


class ForwardProxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.request_lines: list[str] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, target, version = lines[0].split(" ")
            self.request_lines.append(f"{method} {target}")
            url = urlsplit(target)
            headers = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("connection:", "proxy-connection:"))
            ]
            length = next(
                (
                    int(h.split(":", 1)[1])
                    for h in headers
                    if h.lower().startswith("content-length")
                ),
                0,
            )
            body = await reader.readexactly(length)
            upstream_reader, upstream_writer = await asyncio.open_connection(
                url.hostname, url.port or 80
            )
            path = url.path + (f"?{url.query}" if url.query else "")
            request = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"])
            upstream_writer.write(request.encode() + b"\r\n\r\n" + body)
            await upstream_writer.drain()
            writer.write(await upstream_reader.read())
            await writer.drain()
            upstream_writer.close()
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()
                await writer.wait_closed()
