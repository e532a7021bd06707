"""HTTP wire models between the cluster agent and the control-plane API.

The agent shares these models and nothing else with the control plane.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.gateway import ProxySettings


class AgentBootstrap(BaseModel):
    """Written by cloud-init to the node; everything the agent needs to phone home."""

    api_url: str
    cluster_id: str
    cluster_name: str
    agent_token: str = Field(repr=False)
    hostname: str
    system_id: str
    role: str = Field(description="control-plane or worker")
    first_control_plane: bool = False
    kubernetes_version: str
    proxy: ProxySettings = Field(default_factory=ProxySettings)


class NodeReport(BaseModel):
    """One node's state as its agent sees it."""

    hostname: str
    system_id: str = ""
    role: str = "worker"
    ready: bool = False
    kubelet_version: str = ""


class AgentHeartbeat(BaseModel):
    """Sent every few seconds by each node's agent. Cheap: signals a workflow only on change."""

    node: NodeReport
    control_plane_ready: bool = False
    healthy: bool = True
    message: str = ""


class AgentStatusReport(AgentHeartbeat):
    """Sent on change. The first control-plane node attaches the admin kubeconfig once."""

    kubeconfig: str | None = Field(default=None, repr=False)


class AgentCommand(BaseModel):
    id: str
    kind: str = Field(description="upgrade or repave")
    args: dict[str, str] = Field(default_factory=dict)


class AgentCommandList(BaseModel):
    commands: list[AgentCommand]


class AgentCommandResult(BaseModel):
    state: str = Field(description="running, succeeded or failed")
    node: str = ""
    progress: str = ""
    message: str = ""


class AgentAck(BaseModel):
    ok: bool = True
    signalled: bool = False
