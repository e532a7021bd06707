"""What a node tells the control plane: heartbeats, and status reports only on change."""

from __future__ import annotations

from dataclasses import dataclass

from agent.api_client import HEARTBEAT_PATH, STATUS_PATH
from agent.node_backend import NodeState
from agent.outbox import Report, ReportKind
from domain.agent_wire import (
    AgentBootstrap,
    AgentHeartbeat,
    AgentStatusReport,
    NodeReport,
    NodeRole,
)


@dataclass
class LocalNode:
    """The node this agent runs on, as last seen through its backend."""

    hostname: str
    system_id: str
    role: NodeRole
    ready: bool = False
    kubelet_version: str = ""
    message: str = ""

    @classmethod
    def of(cls, bootstrap: AgentBootstrap) -> LocalNode:
        return cls(bootstrap.hostname, bootstrap.system_id, bootstrap.role)

    def update(self, state: NodeState) -> None:
        self.ready = state.ready
        self.kubelet_version = state.kubelet_version
        self.message = state.message


class NodeReporter:
    def __init__(self, node: LocalNode) -> None:
        self.node = node
        self.control_plane_ready = False
        self.kubeconfig: str | None = None
        self._last_reported: tuple[bool, str, bool] | None = None

    def heartbeat(self) -> Report:
        body = AgentHeartbeat(
            node=self._node_report(),
            control_plane_ready=self.control_plane_ready,
            message=self.node.message,
        )
        return Report(ReportKind.HEARTBEAT, HEARTBEAT_PATH, body)

    def status_if_changed(self) -> Report | None:
        """A status report when what the control plane acts on changed, else None."""
        state = (self.node.ready, self.node.kubelet_version, self.control_plane_ready)
        if state == self._last_reported:
            return None
        self._last_reported = state
        body = AgentStatusReport(
            node=self._node_report(),
            control_plane_ready=self.control_plane_ready,
            message=self.node.message,
            kubeconfig=self.kubeconfig,
        )
        # The kubeconfig travels once; the outbox guarantees that once arrives.
        self.kubeconfig = None
        return Report(ReportKind.STATUS, STATUS_PATH, body)

    def _node_report(self) -> NodeReport:
        return NodeReport(
            hostname=self.node.hostname,
            system_id=self.node.system_id,
            role=self.node.role,
            ready=self.node.ready,
            kubelet_version=self.node.kubelet_version,
        )
