"""Bootstraps, fast timings and a polling wait for the agent tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from agent.agent import Agent
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap
from domain.gateway import ProxySettings

TOKEN = "agent-token-for-tests"
FAST = AgentTimings(
    kubeadm_init=0.1,
    kubeadm_join=0.05,
    upgrade_per_node=0.05,
    repave=0.05,
    heartbeat_interval=0.1,
    command_poll_interval=0.05,
    standby_command_poll_interval=0.1,
    request_timeout=2.0,
    backoff_initial=0.05,
    backoff_max=0.3,
)


def bootstrap(
    api_url: str,
    hostname: str,
    *,
    role: str = "worker",
    first: bool = False,
    cluster_id: str = "c-1",
    version: str = "v1.30.2",
    proxy: ProxySettings | None = None,
) -> AgentBootstrap:
    return AgentBootstrap(
        api_url=api_url,
        cluster_id=cluster_id,
        cluster_name="demo",
        agent_token=TOKEN,
        hostname=hostname,
        system_id=f"sys-{hostname}",
        role=role,
        first_control_plane=first,
        kubernetes_version=version,
        proxy=proxy or ProxySettings(),
    )


async def eventually(check: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


def simulated_agent(
    config: AgentBootstrap,
    client: httpx.AsyncClient,
    *,
    registry: ClusterRegistry | None = None,
    node_ip: str = "127.0.0.1",
    state_dir: Path | None = None,
    timings: AgentTimings = FAST,
) -> Agent:
    """An agent on a simulated node of `registry`'s cluster, as the agent runtime makes them."""
    backend = SimulatedBackend.attach(
        config, registry or ClusterRegistry(), timings=timings, node_ip=node_ip
    )
    return Agent(config, client, backend, state_dir=state_dir, timings=timings)
