"""The simulated Kubernetes API of each cluster, shared by the node agents of one process.

A real agent on the first control-plane node would read and drive the other nodes through
the cluster's API server; here the agents of one runtime (or fleet) share this object
instead, so an upgrade run by the first control plane changes each node's kubelet version
and each node's own agent reports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

CONTROL_PLANE_ROLE = "control-plane"


@dataclass
class SimulatedNode:
    hostname: str
    system_id: str
    role: str
    ready: bool = False
    kubelet_version: str = ""
    message: str = ""


class SimulatedCluster:
    def __init__(self, cluster_id: str, kubernetes_version: str) -> None:
        self.cluster_id = cluster_id
        self.kubernetes_version = kubernetes_version
        self.control_plane_ready = asyncio.Event()
        self.agents = 0  # agents of this process attached, joined or not yet
        self._nodes: dict[str, SimulatedNode] = {}
        self._listeners: dict[str, Callable[[], None]] = {}

    def join(self, node: SimulatedNode, on_change: Callable[[], None]) -> None:
        self._nodes[node.hostname] = node
        self._listeners[node.hostname] = on_change
        on_change()

    def leave(self, hostname: str) -> None:
        self._nodes.pop(hostname, None)
        self._listeners.pop(hostname, None)

    def __len__(self) -> int:
        return len(self._nodes)

    def find(self, name: str) -> SimulatedNode | None:
        """A node by hostname or MAAS system id."""
        if name in self._nodes:
            return self._nodes[name]
        return next((n for n in self._nodes.values() if n.system_id == name), None)

    def upgrade_order(self) -> list[SimulatedNode]:
        """Control planes before workers, as kubeadm requires."""
        return sorted(
            self._nodes.values(), key=lambda n: (n.role != CONTROL_PLANE_ROLE, n.hostname)
        )

    def update(
        self,
        node: SimulatedNode,
        *,
        ready: bool | None = None,
        kubelet_version: str | None = None,
        message: str | None = None,
    ) -> None:
        """Change a node and tell its agent, which reports the change."""
        if ready is not None:
            node.ready = ready
        if kubelet_version is not None:
            node.kubelet_version = kubelet_version
        if message is not None:
            node.message = message
        listener = self._listeners.get(node.hostname)
        if listener is not None:
            listener()


class ClusterRegistry:
    """Every simulated cluster known to this process, by cluster id."""

    def __init__(self) -> None:
        self._clusters: dict[str, SimulatedCluster] = {}

    def attach(self, cluster_id: str, kubernetes_version: str) -> SimulatedCluster:
        if cluster_id not in self._clusters:
            self._clusters[cluster_id] = SimulatedCluster(cluster_id, kubernetes_version)
        cluster = self._clusters[cluster_id]
        cluster.agents += 1
        return cluster

    def detach(self, cluster: SimulatedCluster) -> None:
        cluster.agents -= 1
        if cluster.agents <= 0:
            self._clusters.pop(cluster.cluster_id, None)
