"""Inputs of management signals and updates, and of the sweeps: what the API and the agent
path drive. The names are in domain.naming, the lifecycle saga shapes in domain.lifecycle.

Kept apart from the workflow code so the API imports plain models, not workflow classes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.agent_wire import CommandResult
from domain.cluster import MAX_NODES_PER_CLUSTER, MAX_NODES_PER_POOL, Name, NodePool
from domain.lifecycle import (
    DEFAULT_NODE_SILENCE_SECONDS,
    ClusterRef,
    GatewayRef,
    LifecycleTimeouts,
)
from domain.maas import MaasAccount, Machine
from domain.management import ActionId, PendingAction
from domain.phases import Phase
from domain.remediation import NodeRemediation, ObservedNode
from domain.text import Hostname, Message
from domain.versions import KubeletVersion, KubernetesVersion


class AgentReport(BaseModel):
    """What changed, as the agent reported it: the nodes whose state changed (receivers merge
    them by hostname) and the cluster-wide summary over every node."""

    control_plane_ready: bool = False
    kubernetes_version: KubeletVersion = ""
    nodes: list[ObservedNode] = Field(default_factory=list, max_length=MAX_NODES_PER_CLUSTER)
    healthy: bool = True
    message: Message = ""


class CommandResultSignal(CommandResult):
    """An agent's command result, addressed to the queued action it answers."""

    command_id: ActionId


class UpgradeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubernetes_version: KubernetesVersion


class ScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: Name
    count: int = Field(ge=0, le=MAX_NODES_PER_POOL, strict=True)


class RepaveRequest(BaseModel):
    """Replace one node, or every node of a pool (rolling, by the pool's repave settings)."""

    model_config = ConfigDict(extra="forbid")

    node: Hostname | None = Field(default=None, description="hostname or MAAS system id")
    pool: Name | None = Field(default=None, description="every node of this pool, rolling")

    @model_validator(mode="after")
    def _node_or_pool(self) -> RepaveRequest:
        if (self.node is None) == (self.pool is None):
            raise ValueError("name either node (one node) or pool (the whole pool), not both")
        return self


class NodeRequest(BaseModel):
    """Cordon, drain or uncordon one node."""

    model_config = ConfigDict(extra="forbid")

    node: Hostname = Field(description="hostname or MAAS system id")


class ActionAccepted(BaseModel):
    """Answer of a management update: the action was queued under this id."""

    action_id: str
    kind: str
    message: str = ""


class ManageState(BaseModel):
    """All the management workflow's state; carried whole across continue-as-new."""

    cluster: ClusterRef
    agent_token: str = Field(repr=False)
    machines: list[Machine]
    kubernetes_version: KubernetesVersion
    phase: Phase = Phase.RUNNING
    paused: bool = False
    nodes: list[ObservedNode] = Field(default_factory=list)
    pending: list[PendingAction] = Field(default_factory=list)
    remediation: list[NodeRemediation] = Field(
        default_factory=list, description="unhealthy nodes and their place on the ladder"
    )
    action_seq: int = 0
    last_report_unix: float = 0.0
    timeouts: LifecycleTimeouts = Field(default_factory=LifecycleTimeouts)
    silence_seconds: float = 120.0
    control_plane_host: str = Field(
        default="", description="the API server endpoint nodes added later join through"
    )
    history_limit: int = Field(
        default=2000, ge=50, description="continue-as-new once a run's history is this long"
    )


class ManageInput(BaseModel):
    state: ManageState


class ValidateAccountInput(BaseModel):
    account: MaasAccount
    gateway: GatewayRef
    wait_seconds: float = 20.0


class PlanClusterInput(BaseModel):
    """Ask the gateway what MAAS would hand these pools; `wait_seconds` bounds the wait."""

    account: MaasAccount
    gateway: GatewayRef
    pools: list[NodePool]
    wait_seconds: float = 20.0
    cluster_id: str | None = Field(
        default=None, description="a scale-up's cluster: its machines count in the zone spread"
    )


class SilenceSweepInput(BaseModel):
    silence_seconds: float
    node_silence_seconds: float = DEFAULT_NODE_SILENCE_SECONDS


class OrphanSweepInput(BaseModel):
    """Accounts are looked up at each run (control-plane activity), not frozen in the schedule."""

    gateway: GatewayRef
    grace_seconds: float = 600.0
