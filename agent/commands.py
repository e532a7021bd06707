"""What the first control-plane node does with a command: upgrade and repave, with progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent.cluster import SimulatedCluster
from agent.kubeadm import parse_version
from agent.timings import AgentTimings
from domain.agent_wire import AgentCommand, AgentCommandResult

log = logging.getLogger(__name__)

UPGRADE = "upgrade"
REPAVE = "repave"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"

Post = Callable[[AgentCommandResult], None]


async def execute(
    command: AgentCommand, cluster: SimulatedCluster, timings: AgentTimings, post: Post
) -> None:
    """Run one command to its end; every outcome, including a bug, is posted as a result."""
    try:
        if command.kind == UPGRADE:
            await _upgrade(command, cluster, timings, post)
        elif command.kind == REPAVE:
            await _repave(command, cluster, timings, post)
        else:
            post(AgentCommandResult(state=FAILED, message=f"unknown command kind {command.kind!r}"))
    except asyncio.CancelledError:
        raise
    except Exception as error:
        log.exception("command %s (%s) failed", command.id, command.kind)
        post(AgentCommandResult(state=FAILED, message=f"agent error: {error}"))


async def _upgrade(
    command: AgentCommand, cluster: SimulatedCluster, timings: AgentTimings, post: Post
) -> None:
    version = command.args.get("kubernetes_version", "")
    try:
        target = parse_version(version)
        current = parse_version(cluster.kubernetes_version)
    except ValueError as error:
        post(AgentCommandResult(state=FAILED, message=str(error)))
        return
    if target < current:
        post(
            AgentCommandResult(
                state=FAILED,
                message=f"kubeadm cannot downgrade from {cluster.kubernetes_version} to {version}",
            )
        )
        return
    nodes = cluster.upgrade_order()
    for index, node in enumerate(nodes, start=1):
        post(
            AgentCommandResult(
                state=RUNNING,
                node=node.hostname,
                progress=f"{index}/{len(nodes)}",
                message=f"upgrading {node.hostname} to {version}",
            )
        )
        cluster.update(node, ready=False, message=f"draining for upgrade to {version}")
        if timings.upgrade_per_node:
            await asyncio.sleep(timings.upgrade_per_node)
        cluster.update(node, ready=True, kubelet_version=version, message="")
    cluster.kubernetes_version = version
    post(
        AgentCommandResult(
            state=SUCCEEDED,
            progress=f"{len(nodes)}/{len(nodes)}",
            message=f"{len(nodes)} nodes at {version}",
        )
    )


async def _repave(
    command: AgentCommand, cluster: SimulatedCluster, timings: AgentTimings, post: Post
) -> None:
    name = command.args.get("node", "")
    node = cluster.find(name)
    if node is None:
        post(AgentCommandResult(state=FAILED, node=name, message=f"no node {name!r} in cluster"))
        return
    post(AgentCommandResult(state=RUNNING, node=node.hostname, progress="0/1", message="repaving"))
    cluster.update(node, ready=False, message="repaving")
    if timings.repave:
        await asyncio.sleep(timings.repave)
    cluster.update(node, ready=True, kubelet_version=cluster.kubernetes_version, message="")
    post(
        AgentCommandResult(
            state=SUCCEEDED, node=node.hostname, progress="1/1", message="node repaved"
        )
    )
