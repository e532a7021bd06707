"""HTTP wire models between the cluster agent and the control-plane API.

The agent shares these models and nothing else with the control plane.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.gateway import ProxySettings
from domain.text import Hostname, Label, Message, OptionalHostname
from domain.versions import KubeletVersion

# A MAAS system id (or empty when the agent does not know it).
SystemId = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]


class NodeRole(StrEnum):
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"


class CommandState(StrEnum):
    """Where an agent command is, as its agent reports it."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self is not CommandState.RUNNING


class ActionKind(StrEnum):
    """A management action. Upgrade, cordon, drain and uncordon reach the agent as commands of
    that kind; a repave sends a `repave` command per node that leaves (drain, then take it out
    of Kubernetes) before its machine is released or redeployed."""

    UPGRADE = "upgrade"
    SCALE = "scale"
    REPAVE = "repave"
    REMEDIATE = "remediate"
    CORDON = "cordon"
    DRAIN = "drain"
    UNCORDON = "uncordon"


# The actions on one node the agent runs as they are named.
NODE_ACTIONS = (ActionKind.CORDON, ActionKind.DRAIN, ActionKind.UNCORDON)


# An admin kubeconfig is a few KB; this bounds what a node may make us store.
MAX_KUBECONFIG = 64 * 1024


class AgentBootstrap(BaseModel):
    """Written by cloud-init to the node; everything the agent needs to phone home."""

    api_url: str
    cluster_id: str
    cluster_name: str
    agent_token: str = Field(repr=False)
    hostname: str
    system_id: str
    role: NodeRole
    first_control_plane: bool = False
    kubernetes_version: str
    proxy: ProxySettings = Field(default_factory=ProxySettings)


class NodeReport(BaseModel):
    """One node's state as its agent sees it; the management workflow keeps the latest."""

    hostname: Hostname = Field(description="the MAAS hostname of one of the cluster's machines")
    system_id: SystemId = ""
    role: NodeRole = NodeRole.WORKER
    ready: bool = False
    kubelet_version: KubeletVersion = ""


class AgentHeartbeat(BaseModel):
    """Sent every few seconds by each node's agent. Cheap: signals a workflow only on change."""

    node: NodeReport
    control_plane_ready: bool = False
    healthy: bool = True
    message: Message = ""


class AgentStatusReport(AgentHeartbeat):
    """Sent on change. The first control-plane node attaches the admin kubeconfig once."""

    kubeconfig: str | None = Field(default=None, repr=False, max_length=MAX_KUBECONFIG)


# The args key naming the control-plane node whose agent runs a command (remediation and
# repave name a Ready one other than the node they take out); without it, the first
# control-plane machine the cluster records runs it.
RUNNER_ARG = "runner"


class AgentCommand(BaseModel):
    id: str
    kind: str = Field(description="upgrade, repave, remediate, cordon, drain or uncordon")
    args: dict[str, str] = Field(default_factory=dict)

    def runs_on(self, hostname: str, default_runner: str | None) -> bool:
        """Whether the agent of `hostname` runs this command: the node it names as its
        runner, else the default one (the first control-plane machine recorded)."""
        return hostname == (self.args.get(RUNNER_ARG) or default_runner)


class AgentCommandList(BaseModel):
    commands: list[AgentCommand]


class CommandResult(BaseModel):
    """Progress or outcome of one agent command, as the agent posts it."""

    model_config = ConfigDict(extra="forbid")

    state: CommandState
    node: OptionalHostname = ""
    progress: Label = ""
    message: Message = ""


class AgentAck(BaseModel):
    ok: bool = True
    signalled: bool = False
