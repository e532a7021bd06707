"""`metalgate agent run|runtime`: one node's agent, or the boot-hook host of many."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from agent.agent import Agent
from agent.api_client import build_http_client
from agent.runtime import AgentRuntime, serve
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap
from runtime.logs import configure_logging

log = logging.getLogger(__name__)

# How long a stopping agent may spend delivering what it still holds.
DRAIN_SECONDS = 5.0


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runtime")(runtime)


def _timings(init_seconds: float, heartbeat_interval: float) -> AgentTimings:
    return AgentTimings(kubeadm_init=init_seconds, heartbeat_interval=heartbeat_interval)


def run(
    bootstrap: Path = typer.Option(..., exists=True, dir_okay=False, help="bootstrap.json"),
    node_ip: str = typer.Option(None, help="Address the API server advertises [this host's]"),
    init_seconds: float = typer.Option(2.0, help="Simulated kubeadm init duration"),
    heartbeat_interval: float = typer.Option(5.0, help="Seconds between heartbeats"),
) -> None:
    """Run this node's agent until SIGTERM."""
    configure_logging()
    config = AgentBootstrap.model_validate_json(bootstrap.read_text())
    timings = _timings(init_seconds, heartbeat_interval)
    _run_until_signalled(_run_agent(config, timings, node_ip or _host_address()))


def runtime(
    host: str = typer.Option("127.0.0.1", help="Address the boot hook listens on"),
    port: int = typer.Option(8090, help="Port the boot hook listens on"),
    init_seconds: float = typer.Option(2.0, help="Simulated kubeadm init duration"),
    heartbeat_interval: float = typer.Option(5.0, help="Seconds between heartbeats"),
) -> None:
    """Host one agent per deployed machine, started and stopped by the MAAS boot hook."""
    configure_logging()
    timings = _timings(init_seconds, heartbeat_interval)
    _run_until_signalled(serve(host, port, AgentRuntime(timings)))


async def _run_agent(config: AgentBootstrap, timings: AgentTimings, node_ip: str) -> None:
    async with build_http_client(config.api_url, config.proxy, timings.request_timeout) as client:
        agent = Agent(
            config, client, timings=timings, node_ip=node_ip, wait_for_control_plane=False
        )
        try:
            await agent.run()
        finally:
            # Deliver what is queued (a command result, the last status) before exiting.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.flush(), DRAIN_SECONDS)


def _run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    async def supervise() -> None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(supervise())


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
