"""Workflow names, inputs, signals and updates: what the API and the agent path drive.

Kept apart from the workflow code so the API imports plain models, not workflow classes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.agent_wire import CommandResult, NodeReport
from domain.cluster import MAX_NODES_PER_CLUSTER, MAX_NODES_PER_POOL, ClusterSpec, Name
from domain.gateway import ProxySettings
from domain.maas import MaasAccount, Machine
from domain.management import ActionId, PendingAction
from domain.phases import Phase, Reason
from domain.text import Hostname, Message
from domain.versions import KubeletVersion, KubernetesVersion

CREATE_WORKFLOW = "ClusterCreate"
DELETE_WORKFLOW = "ClusterDelete"
MANAGE_WORKFLOW = "ClusterManagement"
VALIDATE_ACCOUNT_WORKFLOW = "CloudAccountValidate"
SILENCE_SWEEP_WORKFLOW = "AgentSilenceSweep"
ORPHAN_SWEEP_WORKFLOW = "OrphanSweep"
RECONCILE_WORKFLOW = "Reconcile"

# Signals
SIGNAL_AGENT_REPORT = "agent_report"
SIGNAL_AGENT_SILENT = "agent_silent"
SIGNAL_COMMAND_RESULT = "command_result"
SIGNAL_STOP = "stop"

# Updates (management)
UPDATE_UPGRADE = "upgrade"
UPDATE_SCALE = "scale"
UPDATE_REPAVE = "repave"
UPDATE_PAUSE = "pause"
UPDATE_RESUME = "resume"

# Queries
QUERY_STATE = "state"


class LifecycleTimeouts(BaseModel):
    """Seconds. Inputs, not constants, so tests can shrink them."""

    gateway_probe: float = Field(default=30.0, description="after this long unpolled: waiting")
    gateway_give_up: float = Field(default=86400.0, description="create fails after this wait")
    maas_call: float = 120.0
    deploy: float = 1800.0
    deploy_poll_interval: float = 2.0
    agent_ready: float = 900.0
    max_deploy_replacements: int = 3
    command: float = 3600.0
    # Delete: how long MAAS may take to release (by erase policy), and how long the other
    # workflows get to close before delete terminates them.
    release_none: float = 1800.0
    release_quick: float = 3600.0
    release_secure: float = 12 * 3600.0
    release_poll_interval: float = 5.0
    stop_workflows: float = 600.0


class GatewayRef(BaseModel):
    id: str
    name: str
    proxy: ProxySettings = Field(default_factory=ProxySettings)


class ClusterRef(BaseModel):
    """Everything a lifecycle workflow needs to know about its cluster and where it lives."""

    cluster_id: str
    project_id: str
    spec: ClusterSpec
    gateway: GatewayRef
    account: MaasAccount
    installation_id: str = Field(
        default="", description="the control plane's name in MAAS ownership marks"
    )


class CreateClusterInput(BaseModel):
    cluster: ClusterRef
    timeouts: LifecycleTimeouts = Field(default_factory=LifecycleTimeouts)
    silence_seconds: float = 120.0


class CreateClusterResult(BaseModel):
    phase: Phase
    reason: Reason | None = None
    message: str = ""
    machines: list[Machine] = Field(default_factory=list)


class DeleteClusterInput(BaseModel):
    cluster: ClusterRef
    timeouts: LifecycleTimeouts = Field(default_factory=LifecycleTimeouts)


class DeleteClusterResult(BaseModel):
    released: list[str]


class AgentReport(BaseModel):
    """What changed, as the agent reported it: the nodes whose state changed (receivers merge
    them by hostname) and the cluster-wide summary over every node."""

    control_plane_ready: bool = False
    kubernetes_version: KubeletVersion = ""
    nodes: list[NodeReport] = Field(default_factory=list, max_length=MAX_NODES_PER_CLUSTER)
    healthy: bool = True
    message: Message = ""


class AgentSilent(BaseModel):
    last_seen_unix: float


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
    nodes: list[NodeReport] = Field(default_factory=list)
    pending: list[PendingAction] = Field(default_factory=list)
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


class SilenceSweepInput(BaseModel):
    silence_seconds: float


class OrphanSweepInput(BaseModel):
    """Accounts are looked up at each run (control-plane activity), not frozen in the schedule."""

    gateway: GatewayRef
    grace_seconds: float = 600.0
