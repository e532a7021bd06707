"""`metalgate agent run`: one node's agent until SIGTERM.

Apart from `cli.agent` (the full CLI), the agent-only distribution a node installs
(`bootstrap/agent_distribution.py`) ships this module, so it imports only the agent, `domain`
and `runtime.logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from agent.agent import Agent
from agent.api_client import build_http_client
from agent.backends.real.backend import ADMIN_KUBECONFIG, KUBELET_KUBECONFIG, RealBackend
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry
from agent.node_backend import NodeBackend
from agent.state import REAL_NODE_STATE_DIR
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap, NodeRole
from runtime.logs import configure_logging

log = logging.getLogger(__name__)

# How long a stopping agent may spend delivering what it still holds.
DRAIN_SECONDS = 5.0


def timings_for(init_seconds: float, heartbeat_interval: float) -> AgentTimings:
    return AgentTimings(kubeadm_init=init_seconds, heartbeat_interval=heartbeat_interval)


class Backend(StrEnum):
    REAL = "real"
    SIMULATED = "simulated"


def run(
    bootstrap: Path = typer.Option(..., exists=True, dir_okay=False, help="bootstrap.json"),
    backend: Backend = typer.Option(
        Backend.REAL, help="real: this node's kubeadm and API server; simulated: sleeps"
    ),
    kubeconfig: Path = typer.Option(
        None,
        help=f"Kubeconfig for the API server (default: {ADMIN_KUBECONFIG} on control-plane "
        f"nodes, {KUBELET_KUBECONFIG} on workers)",
    ),
    state_dir: Path = typer.Option(REAL_NODE_STATE_DIR, help="Where the agent keeps what it ran"),
    node_ip: str = typer.Option(None, help="Simulated: address the API server advertises"),
    init_seconds: float = typer.Option(2.0, help="Simulated: kubeadm init duration"),
    heartbeat_interval: float = typer.Option(5.0, help="Seconds between heartbeats"),
) -> None:
    """Run this node's agent until SIGTERM."""
    configure_logging()
    config = AgentBootstrap.model_validate_json(bootstrap.read_text())
    timings = timings_for(init_seconds, heartbeat_interval)
    node: NodeBackend
    if backend is Backend.REAL:
        # kubeadm writes admin.conf on every control-plane node (init and join alike), and
        # any of them may come to run the cluster's commands.
        default = ADMIN_KUBECONFIG if config.role == NodeRole.CONTROL_PLANE else KUBELET_KUBECONFIG
        node = RealBackend(config.hostname, kubeconfig or default)
    else:
        # A lone simulated node cannot see its cluster's first control plane: it just joins.
        node = SimulatedBackend.attach(
            config,
            ClusterRegistry(),
            timings=timings,
            node_ip=node_ip or _host_address(),
            wait_for_control_plane=False,
        )
    run_until_signalled(_run_agent(config, node, timings, state_dir))


async def _run_agent(
    config: AgentBootstrap, backend: NodeBackend, timings: AgentTimings, state_dir: Path
) -> None:
    async with build_http_client(config.api_url, config.proxy, timings.request_timeout) as client:
        agent = Agent(config, client, backend, state_dir=state_dir, timings=timings)
        try:
            await agent.run()
        finally:
            # Deliver what is queued (a command result, the last status) before exiting.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.flush(), DRAIN_SECONDS)


def run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
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
