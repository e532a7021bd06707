"""A gateway started while Temporal is unreachable waits for it instead of exiting."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from runtime.settings import Settings
from tests.support.temporal import assert_eventually
from workers.gateway import run_system_gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def forward(port: int, target: str) -> asyncio.Server:
    """A TCP forwarder on `port` to `target`: Temporal "coming back" at the address."""
    host, target_port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def test_gateway_started_while_temporal_is_down_waits_then_polls(
    env: WorkflowEnvironment,
    codec_keys: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="runtime.temporal")
    caplog.set_level(logging.INFO, logger="workers.gateway")
    port = free_port()
    settings = Settings(
        temporal_address=f"127.0.0.1:{port}",
        data_dir=tmp_path,
        codec_keys=codec_keys,
    )
    stop = asyncio.Event()
    gateway = asyncio.create_task(run_system_gateway(settings, stop))
    await asyncio.sleep(4.0)
    # Before: `Failed client connect` ended the process at once.
    assert not gateway.done(), gateway.exception()
    assert any("waiting for Temporal" in r.getMessage() for r in caplog.records)

    server = await forward(port, env.client.service_client.config.target_host)
    try:
        async with server:

            async def polling() -> None:
                assert any("polling" in r.getMessage() for r in caplog.records)

            await assert_eventually(polling, within=60)
            stop.set()
            await asyncio.wait_for(gateway, timeout=30)
    finally:
        stop.set()
        if not gateway.done():
            gateway.cancel()
