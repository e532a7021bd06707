"""Names, inputs and results of every activity: the contract workflows are written against.

MAAS activities run on a gateway's queue (`gateway.<id>`); control-plane activities run on
`control-plane`. Each takes one model and returns one model.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.agent_wire import NodeRole
from domain.cluster import ControlPlaneEndpoint, EndpointMode, ErasePolicy, NodePool
from domain.gateway import ProxySettings
from domain.lifecycle import DEFAULT_NODE_SILENCE_SECONDS
from domain.maas import MaasAccount, Machine
from domain.naming import CONTROL_PLANE_QUEUE
from domain.phases import Phase, Reason

# --- MAAS activities (gateway side) -------------------------------------------------------

ACQUIRE_MACHINES = "maas.acquire_machines"
DEPLOY_MACHINE = "maas.deploy_machine"
WAIT_DEPLOYED = "maas.wait_deployed"
RELEASE_MACHINES = "maas.release_machines"
FIND_OWNED = "maas.find_owned"
WAIT_RELEASED = "maas.wait_released"
CHECK_ACCOUNT = "maas.check_account"
ENSURE_ENDPOINT = "maas.ensure_endpoint"
REMOVE_ENDPOINT = "maas.remove_endpoint"
FIND_OWNED_ENDPOINTS = "maas.find_owned_endpoints"
PLAN_MACHINES = "maas.plan_machines"

# Failure reasons (ApplicationError types) of MAAS activities that retrying cannot fix.
# MaasProtocolError is retryable: a proxy's error page, a MAAS mid-upgrade or a cut transfer
# can clear up, and the workflows' retry policies bound the attempts.
MAAS_NON_RETRYABLE = [
    Reason.INSUFFICIENT_CAPACITY.value,
    Reason.ENDPOINT_UNAVAILABLE.value,
    Reason.INVALID_CONSTRAINTS.value,
    Reason.MACHINE_DEPLOY_FAILED.value,
    Reason.MAAS_AUTH_FAILED.value,
    Reason.ACQUIRE_SUPERSEDED.value,
]


class AcquireMachinesInput(BaseModel):
    """Take machines for one or more pools in one request, idempotently.

    `request_id` is stable across retries; machines this request already holds (found by
    the cluster's agent_name and owner_data) are returned instead of allocating again.
    """

    account: MaasAccount
    cluster_id: str
    request_id: str
    pools: list[NodePool]
    exclude_system_ids: list[str] = Field(default_factory=list)
    installation_id: str = Field(default="", description="written into the ownership mark")
    replacing: list[str] = Field(
        default_factory=list,
        description="machines the new ones replace (they leave next): not counted in the "
        "zone spread, so a replacement goes to the zone the leaving machine frees",
    )


class AcquireMachinesResult(BaseModel):
    machines: list[Machine]
    notes: list[str] = Field(
        default_factory=list, description="zones that had no room for their share, for events"
    )


class DeployMachineInput(BaseModel):
    account: MaasAccount
    cluster_id: str
    system_id: str
    osystem: str = Field(default="ubuntu", description="ubuntu, or custom for an uploaded image")
    distro_series: str = Field(description="the Ubuntu series, or the custom image's name")
    hwe_kernel: str | None = None
    user_data: str = Field(repr=False, description="cloud-init user data, plain text")


class DeployMachineResult(BaseModel):
    system_id: str
    status: str
    ip_addresses: list[str] = Field(
        default_factory=list, description="claimed by MAAS when the deployment starts"
    )


class WaitDeployedInput(BaseModel):
    """Poll one machine until Deployed; heartbeats each poll. Failed deployment quarantines it."""

    account: MaasAccount
    cluster_id: str
    system_id: str
    poll_interval_seconds: float = 2.0


class WaitDeployedResult(BaseModel):
    machine: Machine


class ReleaseMachinesInput(BaseModel):
    account: MaasAccount
    cluster_id: str
    system_ids: list[str]
    erase_policy: ErasePolicy = ErasePolicy.QUICK
    comment: str = ""


class ReleaseMachinesResult(BaseModel):
    released: list[str] = Field(default_factory=list)
    already_free: list[str] = Field(default_factory=list)
    in_progress: list[str] = Field(
        default_factory=list, description="still Releasing or Disk erasing, owned until Ready"
    )


class WaitReleasedInput(BaseModel):
    """Poll until MAAS lists none of the cluster's machines as owned; heartbeats each poll."""

    account: MaasAccount
    cluster_id: str
    poll_interval_seconds: float = 5.0


class WaitReleasedResult(BaseModel):
    """Owned machines that are not releasing any more (e.g. Failed releasing): release again."""

    stuck: list[str] = Field(default_factory=list)


class FindOwnedInput(BaseModel):
    """`cluster_id=None` lists every machine carrying any metalgate ownership mark."""

    account: MaasAccount
    cluster_id: str | None = None


class OwnedMachine(Machine):
    cluster_id: str
    installation_id: str = Field(default="", description="'' on machines marked before it")


class FindOwnedResult(BaseModel):
    machines: list[OwnedMachine]


class EnsureEndpointInput(BaseModel):
    """Make (or find again) the cluster's API endpoint; with mode dns, point it at the
    control-plane machines MAAS lists as Deploying or Deployed for the cluster, except the
    excluded ones (taken out by remediation, or about to be drained by a repave)."""

    account: MaasAccount
    cluster_id: str
    endpoint: ControlPlaneEndpoint
    control_plane_pool: str
    exclude_system_ids: list[str] = Field(
        default_factory=list,
        description="dns: control-plane machines left out of the record",
    )


class EnsureEndpointResult(BaseModel):
    mode: EndpointMode
    host: str = Field(description="what kubeadm's controlPlaneEndpoint names: an IP or FQDN")
    addresses: list[str] = Field(
        default_factory=list, description="what the host resolves to or announces"
    )


class RemoveEndpointInput(BaseModel):
    account: MaasAccount
    cluster_id: str


class RemoveEndpointResult(BaseModel):
    released_ips: list[str] = Field(default_factory=list)
    deleted_records: list[str] = Field(default_factory=list)


class FindOwnedEndpointsInput(BaseModel):
    account: MaasAccount


class OwnedEndpoint(BaseModel):
    """A MAAS DNS name carrying a cluster's endpoint mark, and the VIPs reserved under it."""

    cluster_id: str
    fqdn: str
    addresses: list[str] = Field(default_factory=list)
    reserved_ips: list[str] = Field(default_factory=list)


class FindOwnedEndpointsResult(BaseModel):
    endpoints: list[OwnedEndpoint]


class PlanMachinesInput(BaseModel):
    """Which machines MAAS would hand these pools (each `count` = machines still needed)."""

    account: MaasAccount
    pools: list[NodePool]
    cluster_id: str | None = Field(
        default=None, description="a scale-up's cluster: its machines count in the zone spread"
    )


class CheckAccountInput(BaseModel):
    account: MaasAccount


class CheckAccountResult(BaseModel):
    maas_version: str
    zones: list[str]
    resource_pools: list[str]
    tags: list[str]
    machines: int
    ready_machines: int


# --- control-plane activities --------------------------------------------------------------

RECORD_STATUS = "cp.record_status"
ISSUE_AGENT_TOKEN = "cp.issue_agent_token"
RENDER_CLOUD_INIT = "cp.render_cloud_init"
ENQUEUE_AGENT_COMMAND = "cp.enqueue_agent_command"
STOP_CLUSTER_WORKFLOWS = "cp.stop_cluster_workflows"
REVOKE_AGENT_TOKEN = "cp.revoke_agent_token"
SWEEP_SILENT_AGENTS = "cp.sweep_silent_agents"
CLUSTER_CLAIMS = "cp.cluster_claims"
LIST_GATEWAY_ACCOUNTS = "cp.list_gateway_accounts"

# RENDER_CLOUD_INIT refuses, without retrying, a cluster whose API endpoint is not known:
# with 3 or 5 control-plane nodes, one node's IP must never become kubeadm's endpoint.
RECORD_ORPHAN_RELEASE = "cp.record_orphan_release"
LIVE_CLUSTERS = "cp.live_clusters"
CLUSTER_LEFTOVERS = "cp.cluster_leftovers"
RECONCILE_CLUSTERS = "cp.reconcile_clusters"


class RecordStatusInput(BaseModel):
    """Forward-only, idempotent status write. `machines=None` leaves machines unchanged."""

    cluster_id: str
    phase: Phase
    reason: Reason | None = None
    message: str = ""
    machines: list[Machine] | None = None
    kubernetes_version: str | None = None
    event: str | None = Field(default=None, description="also append this line to the event log")


class IssueAgentTokenInput(BaseModel):
    cluster_id: str


class AgentTokenResult(BaseModel):
    token: str = Field(repr=False)


class RenderCloudInitInput(BaseModel):
    cluster_id: str
    cluster_name: str
    agent_token: str = Field(repr=False)
    machine: Machine
    role: NodeRole
    first_control_plane: bool
    kubernetes_version: str
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    control_plane_host: str = Field(
        default="",
        description="the API server endpoint's address (VIP, DNS name or load balancer), "
        "made by the gateway before the first control-plane node deploys",
    )


class RenderCloudInitResult(BaseModel):
    user_data: str = Field(repr=False)


class EnqueueAgentCommandInput(BaseModel):
    cluster_id: str
    command_id: str
    kind: str
    args: dict[str, str] = Field(default_factory=dict)


class StopClusterWorkflowsInput(BaseModel):
    """Cancel a running create and stop management, then wait until both are closed."""

    cluster_id: str
    wait_seconds: float = 600.0


class RevokeAgentTokenInput(BaseModel):
    cluster_id: str


class SweepSilentAgentsInput(BaseModel):
    silence_seconds: float
    node_silence_seconds: float = DEFAULT_NODE_SILENCE_SECONDS


class SweepSilentAgentsResult(BaseModel):
    signalled: list[str]
    silent_nodes: list[str] = Field(
        default_factory=list, description="<cluster id>/<hostname> of nodes newly marked silent"
    )


class ClusterClaimsInput(BaseModel):
    """Which of these machines does a live cluster claim? Used by the orphan sweeper.

    Claimed also means "not ours to judge": another installation's, or a cluster Temporal
    knows as open although the store does not know it (a store restored from a backup).
    """

    gateway_id: str
    machines: list[OwnedMachine]


class ClusterClaimsResult(BaseModel):
    claimed: list[str]
    unclaimed: list[str]


class ListGatewayAccountsInput(BaseModel):
    gateway_id: str


class ListGatewayAccountsResult(BaseModel):
    """MAAS accounts reached through this gateway, keys decrypted (the codec encrypts them)."""

    accounts: list[MaasAccount]


class RecordOrphanReleaseInput(BaseModel):
    """Machines (and endpoints) the orphan sweeper released: one event per owning cluster
    the store knows."""

    gateway_id: str
    account_url: str
    machines: list[OwnedMachine]
    endpoints: list[OwnedEndpoint] = Field(default_factory=list)


class ClusterLeftoversInput(BaseModel):
    """What the store says a cluster holds in MAAS, for a force delete that cannot ask MAAS."""

    cluster_id: str


class LiveClustersInput(BaseModel):
    """Which of these clusters still claim what MAAS holds for them (not Failed, not Deleted)?"""

    cluster_ids: list[str]


class LiveClustersResult(BaseModel):
    live: list[str]


class ReconcileClustersInput(BaseModel):
    """Clusters whose saga is missing or ended against their phase get it (re)started."""

    min_age_seconds: float = Field(
        default=120.0, description="leave rows younger than this: their POST may still start"
    )
    task_queue: str = Field(default=CONTROL_PLANE_QUEUE, description="where restarted sagas run")
    limit: int = Field(default=200, ge=1, description="clusters looked at per run")


class ReconcileClustersResult(BaseModel):
    """One line per cluster acted on, as written to its events."""

    actions: list[str] = Field(default_factory=list)
