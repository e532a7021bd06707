"""Task-queue names, workflow types and their messages, workflow-id schemes, search attributes
and MAAS ownership marks.

Every side (API, workers, gateway, tests) imports these, so a name is changed in one place.
"""

from __future__ import annotations

import re

from temporalio.common import SearchAttributeKey

CONTROL_PLANE_QUEUE = "control-plane"
SYSTEM_GATEWAY_ID = "system"
SYSTEM_GATEWAY_NAME = "system private gateway"


def gateway_queue(gateway_id: str) -> str:
    """The task queue only that gateway's workers poll."""
    return f"gateway.{gateway_id}"


def gateway_of_queue(task_queue: str) -> str | None:
    """The gateway id of a `gateway.<id>` queue; None for any other queue."""
    prefix, dot, gateway_id = task_queue.partition(".")
    return gateway_id if prefix == "gateway" and dot and gateway_id else None


def create_workflow_id(cluster_id: str) -> str:
    return f"cluster/{cluster_id}/create"


def delete_workflow_id(cluster_id: str) -> str:
    return f"cluster/{cluster_id}/delete"


def manage_workflow_id(cluster_id: str) -> str:
    return f"cluster/{cluster_id}/manage"


def validate_account_workflow_id(account_id: str) -> str:
    return f"cloud-account/{account_id}/validate"


def plan_workflow_id(project_id: str, request_id: str) -> str:
    """Plans take nothing, so each request is its own run."""
    return f"project/{project_id}/plan/{request_id}"


# Workflow types, and the signals, updates and queries they answer.
CREATE_WORKFLOW = "ClusterCreate"
DELETE_WORKFLOW = "ClusterDelete"
MANAGE_WORKFLOW = "ClusterManagement"
VALIDATE_ACCOUNT_WORKFLOW = "CloudAccountValidate"
PLAN_WORKFLOW = "ClusterPlan"
SILENCE_SWEEP_WORKFLOW = "AgentSilenceSweep"
ORPHAN_SWEEP_WORKFLOW = "OrphanSweep"
RECONCILE_WORKFLOW = "Reconcile"

# Signals
SIGNAL_AGENT_REPORT = "agent_report"
SIGNAL_AGENT_SILENT = "agent_silent"
SIGNAL_COMMAND_RESULT = "command_result"
SIGNAL_STOP = "stop"
SIGNAL_FORCE_DELETE = "force_delete"

# Updates (management)
UPDATE_UPGRADE = "upgrade"
UPDATE_SCALE = "scale"
UPDATE_REPAVE = "repave"
UPDATE_PAUSE = "pause"
UPDATE_RESUME = "resume"
UPDATE_CORDON = "cordon"
UPDATE_DRAIN = "drain"
UPDATE_UNCORDON = "uncordon"

# Queries
QUERY_STATE = "state"


SILENCE_SWEEP_SCHEDULE_ID = "fleet/agent-silence-sweep"


RECONCILE_SCHEDULE_ID = "fleet/reconcile"


def orphan_sweep_schedule_id(gateway_id: str) -> str:
    return f"gateway/{gateway_id}/orphan-sweep"


# Search attributes: what the Temporal Web UI filters on.
SA_CLUSTER_ID = SearchAttributeKey.for_keyword("ClusterId")
SA_CLUSTER_NAME = SearchAttributeKey.for_keyword("ClusterName")
SA_PROJECT = SearchAttributeKey.for_keyword("Project")
SA_CLUSTER_PHASE = SearchAttributeKey.for_keyword("ClusterPhase")
SA_GATEWAY_ID = SearchAttributeKey.for_keyword("GatewayId")
# Why the cluster waits or failed (a domain.phases.Reason); unset while nothing is wrong.
SA_CLUSTER_REASON = SearchAttributeKey.for_keyword("ClusterReason")
SEARCH_ATTRIBUTES = (
    SA_CLUSTER_ID,
    SA_CLUSTER_NAME,
    SA_PROJECT,
    SA_CLUSTER_PHASE,
    SA_GATEWAY_ID,
    SA_CLUSTER_REASON,
)

# MAAS ownership marks. MAAS filters machines by exact agent_name, so agent_name names the
# cluster (one lookup finds everything it owns); the request that took a machine goes into
# owner_data and the allocation comment. A cluster acquires one request at a time, so a
# machine with the cluster's agent_name but no owner_data yet belongs to the request in flight.
OWNER_AGENT_PREFIX = "metalgate:"
OWNER_DATA_CLUSTER = "metalgate_cluster"
OWNER_DATA_REQUEST = "metalgate_request"
OWNER_DATA_POOL = "metalgate_pool"
# The installation (control plane) whose cluster took the machine; absent on machines marked
# before installations were named, which therefore are never released as orphans of unknown
# clusters. The acquire attempt fences a late attempt of the same request (see maas.py).
OWNER_DATA_INSTALLATION = "metalgate_installation"
OWNER_DATA_ATTEMPT = "metalgate_attempt"
QUARANTINE_TAG = "metalgate-quarantine"


def owner_agent_name(cluster_id: str) -> str:
    return f"{OWNER_AGENT_PREFIX}{cluster_id}"


# A cluster's control-plane endpoint is a MAAS DNS name carrying this mark: the VIP is reserved
# with it as hostname (MAAS links the name to the address), a dns-mode record is named so.
# MAAS DNS names carry no owner field, so the name itself says whose it is.
ENDPOINT_RECORD_PREFIX = "metalgate-"
DNS_LABEL_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def endpoint_record_name(cluster_id: str) -> str:
    return f"{ENDPOINT_RECORD_PREFIX}{cluster_id}"


def cluster_of_endpoint_record(name: str) -> str | None:
    """The cluster id an endpoint's DNS name marks, or None for a name we did not make."""
    if not name.startswith(ENDPOINT_RECORD_PREFIX) or name == ENDPOINT_RECORD_PREFIX:
        return None
    return name[len(ENDPOINT_RECORD_PREFIX) :]
