"""The boundary between the agent and its node: what the agent needs from Kubernetes.

Two backends implement `NodeBackend`:
- `agent.backends.real`: a real node, where cloud-init ran `kubeadm init`/`join`; it reads
  the API server with a Kubernetes client and upgrades with kubeadm, apt and systemctl.
  `metalgate agent run` uses it by default.
- `agent.backends.simulated`: an emulated node (sleeps, a shared in-process cluster), chosen
  only by the emulator's boot hook (`agent.runtime`), the fleet simulator, the demo and bench.

The agent and its command runner (`agent.commands`) know only this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

PhaseCallback = Callable[[str], Awaitable[None] | None]


@dataclass(frozen=True)
class NodeState:
    """One Kubernetes node as the API server shows it."""

    name: str
    control_plane: bool
    ready: bool
    kubelet_version: str
    schedulable: bool = True
    message: str = ""  # what the node is doing now (a kubeadm phase, drained for upgrade)


class NodeBackend(Protocol):
    """What an agent needs from its node; the control plane that runs commands also drives
    the cluster."""

    async def bring_up(self, on_phase: PhaseCallback) -> None:
        """Return once this node's kubeadm init or join finished and the API server answers."""
        ...

    async def admin_kubeconfig(self) -> str:
        """The cluster's admin kubeconfig (first control-plane node only)."""
        ...

    async def watch_self(self, on_change: Callable[[NodeState], None]) -> None:
        """Run until cancelled, calling `on_change` whenever this node's state changes."""
        ...

    async def nodes(self) -> list[NodeState]:
        """Every node in kubeadm's upgrade order: this node, the other control planes, workers."""
        ...

    async def find_node(self, name: str) -> NodeState | None:
        """A node by its Kubernetes name (the hostname) or, where known, its MAAS system id."""
        ...

    async def upgrade_kubeadm(self, node: str, version: str, *, first: bool) -> None:
        """`kubeadm upgrade apply <version>` on the first control plane, `upgrade node` elsewhere."""
        ...

    async def cordon(self, node: str) -> None:
        """Mark `node` unschedulable: no new pods land on it; the running ones stay."""
        ...

    async def drain(self, node: str) -> None:
        """Cordon `node` and evict its pods, honouring PodDisruptionBudgets."""
        ...

    async def upgrade_kubelet(self, node: str, version: str) -> None:
        """Install kubelet and kubectl at `version` on `node`, restart kubelet, wait for it."""
        ...

    async def uncordon(self, node: str) -> None:
        """Mark `node` schedulable again."""
        ...

    async def repave(self, node: str) -> None:
        """Take `node` out of the cluster so its machine can be released or redeployed (and
        join again under its name): drain it, remove a control-plane node's etcd member,
        delete its Node."""
        ...

    async def remove_etcd_member(self, node: str) -> None:
        """Remove `node`'s etcd member, run on a surviving control plane; gone is done."""
        ...

    async def delete_node(self, node: str) -> None:
        """Delete `node`'s Node object (its machine is gone or redeployed); gone is done."""
        ...

    async def close(self) -> None: ...
