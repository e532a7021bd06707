"""What a lifecycle saga is handed and answers: shared by the API that starts it, the
activities that start or signal it again (reconciler, silence sweep) and the workflows.

Kept below all three so none of them imports another layer for a shape.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain.cluster import ClusterSpec
from domain.gateway import ProxySettings
from domain.leftovers import LeftBehind
from domain.maas import MaasAccount, Machine
from domain.naming import (
    SA_CLUSTER_ID,
    SA_CLUSTER_NAME,
    SA_CLUSTER_PHASE,
    SA_GATEWAY_ID,
    SA_PROJECT,
)
from domain.phases import Phase, Reason

# Seconds an agent may stay silent before its cluster shows Unreachable.
DEFAULT_SILENCE_SECONDS = 120.0
# Seconds one node's agent may stay silent, while others report, before the node counts as
# not Ready (store/node_silence.py): six missed heartbeats at the agent's default interval.
DEFAULT_NODE_SILENCE_SECONDS = 30.0


class LifecycleTimeouts(BaseModel):
    """Seconds. Inputs, not constants, so tests can shrink them; the defaults here are the
    defaults of the settings they are built from (`Settings.lifecycle_timeouts`)."""

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


DEFAULT_TIMEOUTS = LifecycleTimeouts()


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


def cluster_search_attributes(cluster: ClusterRef, phase: Phase) -> TypedSearchAttributes:
    """What the Temporal UI filters a cluster's workflows on: set by whoever starts one, and
    upserted by the workflow itself (see workflows.status.annotate)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_CLUSTER_ID, cluster.cluster_id),
            SearchAttributePair(SA_CLUSTER_NAME, cluster.spec.name),
            SearchAttributePair(SA_PROJECT, cluster.project_id),
            SearchAttributePair(SA_GATEWAY_ID, cluster.gateway.id),
            SearchAttributePair(SA_CLUSTER_PHASE, phase.value),
        ]
    )


class CreateClusterInput(BaseModel):
    cluster: ClusterRef
    timeouts: LifecycleTimeouts = Field(default_factory=LifecycleTimeouts)
    silence_seconds: float = DEFAULT_SILENCE_SECONDS


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
    left_behind: LeftBehind | None = Field(
        default=None, description="force delete: what MAAS may still hold"
    )


class AgentSilent(BaseModel):
    """The silence sweep's signal to a management workflow."""

    last_seen_unix: float
