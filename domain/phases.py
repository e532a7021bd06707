"""Cluster phases and named reasons: the same strings in the API, CLI, logs and Temporal UI."""

from __future__ import annotations

from enum import StrEnum

# Phase names that were renamed: stored rows and recorded histories may still hold them.
RENAMED_PHASES = {"WaitingForAgent": "JoiningNodes"}


class Phase(StrEnum):
    PENDING = "Pending"
    ACQUIRING_MACHINES = "AcquiringMachines"
    DEPLOYING_OS = "DeployingOS"
    BOOTSTRAPPING_CONTROL_PLANE = "BootstrappingControlPlane"
    JOINING_NODES = "JoiningNodes"
    RUNNING = "Running"
    UPGRADING = "Upgrading"
    SCALING = "Scaling"
    REPAVING = "Repaving"
    REMEDIATING = "Remediating"
    UNREACHABLE = "Unreachable"
    DELETING = "Deleting"
    DELETED = "Deleted"
    FAILED = "Failed"

    @classmethod
    def _missing_(cls, value: object) -> Phase | None:
        renamed = RENAMED_PHASES.get(value) if isinstance(value, str) else None
        return cls(renamed) if renamed else None


# Phases the create saga moves through, in order.
CREATE_PHASES = (
    Phase.PENDING,
    Phase.ACQUIRING_MACHINES,
    Phase.DEPLOYING_OS,
    Phase.BOOTSTRAPPING_CONTROL_PLANE,
    Phase.JOINING_NODES,
    Phase.RUNNING,
)
TERMINAL_PHASES = frozenset({Phase.DELETED, Phase.FAILED})
MANAGED_PHASES = frozenset(
    {
        Phase.RUNNING,
        Phase.UPGRADING,
        Phase.SCALING,
        Phase.REPAVING,
        Phase.REMEDIATING,
        Phase.UNREACHABLE,
    }
)


class Reason(StrEnum):
    """Why a cluster waits or failed. Each names what a person can do about it."""

    WAITING_FOR_GATEWAY = "WaitingForGateway"
    WAITING_FOR_MACHINES = "WaitingForMachines"
    WAITING_FOR_DEPLOYMENT = "WaitingForDeployment"
    WAITING_FOR_AGENT = "WaitingForAgent"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    INVALID_CONSTRAINTS = "InvalidConstraints"
    MACHINE_DEPLOY_FAILED = "MachineDeployFailed"
    DEPLOY_TIMEOUT = "DeployTimeout"
    AGENT_TIMEOUT = "AgentTimeout"
    GATEWAY_UNAVAILABLE = "GatewayUnavailable"
    MAAS_UNREACHABLE = "MaasUnreachable"
    MAAS_AUTH_FAILED = "MaasAuthFailed"
    MAAS_PROTOCOL_ERROR = "MaasProtocolError"
    CANCELLED = "Cancelled"
    AGENT_SILENT = "AgentSilent"
    INTERNAL_ERROR = "InternalError"
    ORPHAN_RELEASED = "OrphanReleased"
    ENDPOINT_UNAVAILABLE = "EndpointUnavailable"
    WAITING_FOR_RELEASE = "WaitingForRelease"
    WAITING_FOR_DISK_ERASE = "WaitingForDiskErase"
    WORKFLOW_TERMINATED = "WorkflowTerminated"
    RECONCILED = "Reconciled"
    GATEWAY_REVOKED = "GatewayRevoked"
    FORCE_DELETED = "ForceDeleted"
    NODE_UNHEALTHY = "NodeUnhealthy"
    REMEDIATION_BLOCKED = "RemediationBlocked"
    WAITING_FOR_DRAIN = "WaitingForDrain"
    REPAVE_BLOCKED = "RepaveBlocked"
    # Failures activities and workflows raise as ApplicationError types.
    MACHINES_STILL_OWNED = "MachinesStillOwned"
    CLUSTER_NOT_FOUND = "ClusterNotFound"
    INVALID_CLUSTER_SPEC = "InvalidClusterSpec"
    INVALID_BOOTSTRAP_INPUT = "InvalidBootstrapInput"
    CONTROL_PLANE_ENDPOINT_MISSING = "ControlPlaneEndpointMissing"
    # A late attempt of an acquire found a newer attempt of the same request at work: it
    # gave back what it took. The server discards its answer anyway; the name is for logs.
    ACQUIRE_SUPERSEDED = "AcquireSuperseded"
    ACTION_REJECTED = "ActionRejected"


# Human guidance shown next to a failure reason.
REASON_HINTS: dict[Reason, str] = {
    Reason.WAITING_FOR_GATEWAY: "start the gateway (metalgate gateway run) or check its network",
    Reason.GATEWAY_REVOKED: "the cluster's gateway was revoked; move its cloud account to "
    "another gateway (or delete the cluster) to manage its machines again",
    Reason.INSUFFICIENT_CAPACITY: "add or commission machines in MAAS, or relax the pool constraints",
    Reason.INVALID_CONSTRAINTS: "fix the tag, zone or resource pool names to ones MAAS knows",
    Reason.MACHINE_DEPLOY_FAILED: "check the machines' events in MAAS; failed ones are quarantined",
    Reason.DEPLOY_TIMEOUT: "check MAAS deployment progress and the machines' power control",
    Reason.AGENT_TIMEOUT: "check that deployed machines can reach the control plane API",
    Reason.FORCE_DELETED: "deleted without the gateway: the events list what MAAS may still "
    "hold; the orphan sweeper releases it once the gateway is back",
    Reason.GATEWAY_UNAVAILABLE: "the gateway did not answer in time; check it is running",
    Reason.MAAS_UNREACHABLE: "check the MAAS URL and that the gateway can reach it",
    Reason.MAAS_AUTH_FAILED: "check the MAAS API key of the cloud account",
    Reason.MAAS_PROTOCOL_ERROR: "check that the URL is a MAAS 2.x API, not a proxy or web page",
    Reason.CANCELLED: "the create was cancelled; every machine was released",
    Reason.AGENT_SILENT: "the cluster agent stopped reporting; check the cluster's network",
    Reason.ENDPOINT_UNAVAILABLE: "pick a free VIP in control_plane_endpoint.address, or give "
    "mode dns a MAAS admin key",
    Reason.WAITING_FOR_RELEASE: "MAAS is releasing the machines; check their events if it stalls",
    Reason.WAITING_FOR_DISK_ERASE: "MAAS is erasing the disks (secure erase takes hours); "
    "check the machines' events in MAAS if it stalls",
    Reason.WORKFLOW_TERMINATED: "a workflow that could not go on was ended; see the events",
    Reason.NODE_UNHEALTHY: "a node is NotReady or silent; metalgate repairs it step by step "
    "(power cycle, redeploy, replace); see the cluster's events",
    Reason.REMEDIATION_BLOCKED: "a node needs repair but a guard holds it (quorum, "
    "max_in_remediation, or remediation turned off); see the events",
    Reason.WAITING_FOR_DRAIN: "the agent is evicting the node's pods; a PodDisruptionBudget "
    "can hold a drain until its pods are healthy elsewhere (see the events)",
    Reason.REPAVE_BLOCKED: "a repave stopped before it would break etcd quorum or take more "
    "nodes out than the pool allows; fix the cause the event names and repave again",
    Reason.RECONCILED: "the reconciler restarted a missing or ended workflow; see the events",
    Reason.WAITING_FOR_MACHINES: "the gateway is allocating machines in MAAS",
    Reason.WAITING_FOR_DEPLOYMENT: "MAAS is deploying the OS; follow the machines' events in MAAS",
    Reason.WAITING_FOR_AGENT: "the nodes are booting; check they can reach the control plane API",
    Reason.INTERNAL_ERROR: "an unexpected error; see the cluster's events and the worker logs, "
    "then delete the cluster or create it again",
    Reason.ORPHAN_RELEASED: "a machine no cluster owns any more was given back to MAAS",
    Reason.MACHINES_STILL_OWNED: "MAAS did not release every machine; check their events in "
    "MAAS, then run the delete again",
    Reason.CLUSTER_NOT_FOUND: "the cluster is gone from the store; nothing left to do",
    Reason.INVALID_CLUSTER_SPEC: "the stored spec does not validate; delete the cluster and "
    "create it again with a valid spec",
    Reason.INVALID_BOOTSTRAP_INPUT: "the node's bootstrap input is incomplete; delete the "
    "cluster and create it again",
    Reason.CONTROL_PLANE_ENDPOINT_MISSING: "the control-plane endpoint was not made before the "
    "nodes; delete the cluster and create it again",
    Reason.ACQUIRE_SUPERSEDED: "a newer attempt of the same acquire took over; nothing to do",
    Reason.ACTION_REJECTED: "fix the request as the message says and send it again",
}
