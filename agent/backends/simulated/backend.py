"""`SimulatedBackend`: a `NodeBackend` for the emulator's machines, the fleet, demo and bench.

Nothing runs on a machine: kubeadm is a sequence of named sleeps, and the agents of one
process share a `SimulatedCluster` in place of the API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.backends.simulated import kubeadm
from agent.backends.simulated.cluster import ClusterRegistry, SimulatedCluster, SimulatedNode
from agent.node_backend import NodeState, PhaseCallback
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap, NodeRole


class SimulatedBackend:
    def __init__(
        self,
        bootstrap: AgentBootstrap,
        cluster: SimulatedCluster,
        node: SimulatedNode,
        *,
        timings: AgentTimings,
        node_ip: str,
        wait_for_control_plane: bool = True,
        registry: ClusterRegistry | None = None,
    ) -> None:
        """`wait_for_control_plane`: joining nodes wait for the first control plane of
        `cluster`; a lone agent (one process per node) cannot see it and joins after the
        join delay instead. `registry`: detach from it on close."""
        self._bootstrap = bootstrap
        self.cluster = cluster
        self.node = node
        self._timings = timings
        self._node_ip = node_ip
        self._wait_for_control_plane = wait_for_control_plane
        self._registry = registry
        self._on_change: Callable[[NodeState], None] | None = None
        self._closed = False

    @classmethod
    def attach(
        cls,
        bootstrap: AgentBootstrap,
        registry: ClusterRegistry,
        *,
        timings: AgentTimings,
        node_ip: str,
        wait_for_control_plane: bool = True,
    ) -> SimulatedBackend:
        """A node of the registry's cluster for `bootstrap`, leaving it again on close."""
        cluster = registry.attach(bootstrap.cluster_id, bootstrap.kubernetes_version)
        node = SimulatedNode(bootstrap.hostname, bootstrap.system_id, bootstrap.role)
        return cls(
            bootstrap,
            cluster,
            node,
            timings=timings,
            node_ip=node_ip,
            wait_for_control_plane=wait_for_control_plane,
            registry=registry,
        )

    @property
    def _first(self) -> bool:
        return self._bootstrap.first_control_plane

    async def bring_up(self, on_phase: PhaseCallback) -> None:
        if self._first:
            await kubeadm.run_phases(
                kubeadm.INIT_PHASES, self._timings.kubeadm_init, _prefixed("kubeadm init", on_phase)
            )
        else:
            await kubeadm.run_phases(
                kubeadm.JOIN_PHASES, self._timings.kubeadm_join, _prefixed("kubeadm join", on_phase)
            )
            if self._wait_for_control_plane:
                # kubeadm join retries until the API server answers; so do we.
                await self.cluster.control_plane_ready.wait()
        self.node.ready = True
        self.node.message = ""
        self.cluster.join(self.node, self._changed)
        if self._first:
            self.cluster.control_plane_ready.set()

    async def admin_kubeconfig(self) -> str:
        return kubeadm.admin_kubeconfig(self._bootstrap.cluster_name, self._node_ip)

    async def watch_self(self, on_change: Callable[[NodeState], None]) -> None:
        self._on_change = on_change
        self._changed()
        await asyncio.Event().wait()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.node.state())

    async def nodes(self) -> list[NodeState]:
        return [n.state() for n in self.cluster.upgrade_order(first=self.node.hostname)]

    async def find_node(self, name: str) -> NodeState | None:
        node = self.cluster.find(name)
        return node.state() if node is not None else None

    async def upgrade_kubeadm(self, node: str, version: str, *, first: bool) -> None:
        if first:
            # `kubeadm upgrade apply`: nodes joining from now on join at the new version.
            self.cluster.kubernetes_version = version

    async def cordon(self, node: str) -> None:
        self.cluster.operations.append(("cordon", node))
        self.cluster.update(self._node(node), schedulable=False, message="cordoned")

    async def drain(self, node: str) -> None:
        # A drained node stays Ready, as in Kubernetes: only new pods stay away.
        self.cluster.operations.append(("drain", node))
        self.cluster.update(self._node(node), schedulable=False, message="drained")

    async def upgrade_kubelet(self, node: str, version: str) -> None:
        target = self._node(node)
        self.cluster.update(target, ready=False, message="kubelet restarting")
        if self._timings.upgrade_per_node:
            await asyncio.sleep(self._timings.upgrade_per_node)
        self.cluster.update(target, ready=True, kubelet_version=version, message="drained")

    async def uncordon(self, node: str) -> None:
        self.cluster.operations.append(("uncordon", node))
        self.cluster.update(self._node(node), schedulable=True, message="")

    async def repave(self, node: str) -> None:
        """Drained, then out of the cluster: its agent reports nothing more until its machine
        is released (the agent stops) or redeployed (a new agent joins under the name)."""
        await self.drain(node)
        if self._timings.repave:
            await asyncio.sleep(self._timings.repave)
        self.cluster.operations.append(("take-out", node))
        target = self._node(node)
        if target.role == NodeRole.CONTROL_PLANE:
            await self.remove_etcd_member(target.hostname)
        await self.delete_node(target.hostname)

    async def remove_etcd_member(self, node: str) -> None:
        self.cluster.etcd_members.discard(node)

    async def delete_node(self, node: str) -> None:
        self.cluster.leave(node)

    async def close(self) -> None:
        """The node leaves the simulated cluster (its machine stopped or was released)."""
        if self._closed:
            return
        self._closed = True
        self.cluster.leave(self.node.hostname)
        if not self.cluster.has_control_plane():
            self.cluster.control_plane_ready.clear()
        if self._registry is not None:
            self._registry.detach(self.cluster)

    def _node(self, name: str) -> SimulatedNode:
        node = self.cluster.find(name)
        if node is None:
            raise LookupError(f"node {name!r} left the cluster")
        return node


def _prefixed(step: str, on_phase: PhaseCallback) -> PhaseCallback:
    def record(phase: str) -> object:
        return on_phase(f"{step}: {phase}")

    return record  # type: ignore[return-value]
