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

from agent.node_backend import NodeState
from domain.agent_wire import NodeRole


@dataclass
class SimulatedNode:
    hostname: str
    system_id: str
    role: NodeRole
    ready: bool = False
    kubelet_version: str = ""
    message: str = ""
    schedulable: bool = True

    def state(self) -> NodeState:
        return NodeState(
            name=self.hostname,
            control_plane=self.role == NodeRole.CONTROL_PLANE,
            ready=self.ready,
            kubelet_version=self.kubelet_version,
            schedulable=self.schedulable,
            message=self.message,
        )


class SimulatedCluster:
    def __init__(self, cluster_id: str, kubernetes_version: str) -> None:
        self.cluster_id = cluster_id
        self.kubernetes_version = kubernetes_version
        self.control_plane_ready = asyncio.Event()
        self.agents = 0  # agents of this process attached, joined or not yet
        self._nodes: dict[str, SimulatedNode] = {}
        self._listeners: dict[str, Callable[[], None]] = {}
        # The API server keeps a Node's kubelet version while its agent restarts.
        self._known_versions: dict[str, str] = {}
        self.upgrades: dict[str, int] = {}  # kubelet upgrades per node, for tests
        # etcd's members by name: a control plane joins as one and stays one when its machine
        # dies, until a surviving control plane removes it.
        self.etcd_members: set[str] = set()
        # (operation, node) in order: cordon, drain, uncordon, take-out; for tests.
        self.operations: list[tuple[str, str]] = []

    def join(self, node: SimulatedNode, on_change: Callable[[], None]) -> None:
        node.kubelet_version = self._known_versions.get(node.hostname, self.kubernetes_version)
        if node.role == NodeRole.CONTROL_PLANE:
            self.etcd_members.add(node.hostname)
        self._nodes[node.hostname] = node
        self._listeners[node.hostname] = on_change
        on_change()

    def leave(self, hostname: str) -> None:
        self._nodes.pop(hostname, None)
        self._listeners.pop(hostname, None)

    def __len__(self) -> int:
        return len(self._nodes)

    def has_control_plane(self) -> bool:
        return any(n.role == NodeRole.CONTROL_PLANE for n in self._nodes.values())

    def find(self, name: str) -> SimulatedNode | None:
        """A node by hostname or MAAS system id."""
        if name in self._nodes:
            return self._nodes[name]
        return next((n for n in self._nodes.values() if n.system_id == name), None)

    def upgrade_order(self, first: str) -> list[SimulatedNode]:
        """`first`, then the other control planes, then workers, as kubeadm requires."""
        return sorted(
            self._nodes.values(),
            key=lambda n: (n.hostname != first, n.role != NodeRole.CONTROL_PLANE, n.hostname),
        )

    def update(
        self,
        node: SimulatedNode,
        *,
        ready: bool | None = None,
        kubelet_version: str | None = None,
        message: str | None = None,
        schedulable: bool | None = None,
    ) -> None:
        """Change a node and tell its agent, which reports the change."""
        if ready is not None:
            node.ready = ready
        if schedulable is not None:
            node.schedulable = schedulable
        if kubelet_version is not None and kubelet_version != node.kubelet_version:
            node.kubelet_version = kubelet_version
            self._known_versions[node.hostname] = kubelet_version
            self.upgrades[node.hostname] = self.upgrades.get(node.hostname, 0) + 1
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
