"""Clusters: the spec a user submits and the state workflows record."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.capacity_plan import ZoneCount
from domain.cluster import ClusterSpec
from domain.conditions import ConditionStatus, ConditionType
from domain.maas import Machine
from domain.phases import Phase, Reason
from domain.remediation import ObservedNode


class ClusterCreate(ClusterSpec):
    """A cluster spec plus the cloud account whose MAAS provides the machines."""

    cloud_account_id: str = Field(min_length=1, max_length=64)

    def spec(self) -> ClusterSpec:
        return ClusterSpec.model_validate(self.model_dump(exclude={"cloud_account_id"}))


class ConditionPublic(BaseModel):
    """One gate of the lifecycle (Cluster API style): False with a reason while the cluster
    waits on it or failed at it, True once passed; the time is when its status last changed."""

    type: ConditionType
    status: ConditionStatus
    reason: str | None = None
    message: str = ""
    last_transition_time: datetime


class PoolStatus(BaseModel):
    """One pool: the nodes its spec asks and how the machines it holds spread over zones."""

    name: str
    role: str = Field(description="control-plane or worker")
    count: int = Field(description="the nodes the spec asks")
    machines: int = Field(description="the machines the cluster holds for it")
    zones: list[str] = Field(
        default_factory=list, description="the MAAS zones the spec lists; empty: any zone"
    )
    by_zone: list[ZoneCount] = Field(
        default_factory=list, description="the pool's machines per MAAS zone"
    )


class ClusterPublic(BaseModel):
    id: str
    project_id: str
    name: str
    cloud_account_id: str
    gateway_id: str
    spec: ClusterSpec
    phase: Phase
    reason: Reason | None = None
    hint: str | None = Field(default=None, description="what a person can do about the reason")
    message: str = ""
    conditions: list[ConditionPublic] = Field(default_factory=list)
    machines: list[Machine] = Field(default_factory=list)
    pools: list[PoolStatus] = Field(
        default_factory=list, description="per pool, its size and spread over MAAS zones"
    )
    nodes: list[ObservedNode] = Field(
        default_factory=list,
        description="each node as its agent last reported it, or since when it is silent "
        "(GET one only)",
    )
    kubernetes_version: str
    agent_silent: bool = False
    last_heartbeat_at: datetime | None = None
    management_paused: bool = Field(
        default=False,
        description="POST .../pause took effect: queued actions and remediation wait",
    )
    management_paused_at: datetime | None = None
    create_workflow_id: str
    delete_workflow_id: str
    manage_workflow_id: str
    temporal_ui_url: str = Field(description="the workflow that drives the current phase")
    create_workflow_ui_url: str = Field(description="the create saga in the Temporal Web UI")
    created_at: datetime
    updated_at: datetime
    delete_requested_at: datetime | None = None


class ClusterList(BaseModel):
    items: list[ClusterPublic]
    total: int
    limit: int
    offset: int


class ClusterEventPublic(BaseModel):
    id: int
    at: datetime
    phase: Phase | None = None
    reason: Reason | None = None
    message: str


class ClusterEventList(BaseModel):
    items: list[ClusterEventPublic]


class KubeconfigPublic(BaseModel):
    cluster_id: str
    kubeconfig: str


class NodePublic(BaseModel):
    """One node: its MAAS machine joined with what its agent last reported."""

    hostname: str
    system_id: str = ""
    pool: str = ""
    zone: str = ""
    machine_status: str = Field(default="", description="the MAAS status last recorded")
    role: str = Field(description="control-plane or worker")
    kubelet_version: str = Field(default="", description="'' until the agent reports")
    ready: bool | None = Field(default=None, description="None until the agent reports")
    remediation: str = Field(default="-", description="remediation state; '-' when none")


class NodeList(BaseModel):
    items: list[NodePublic]
