"""Agent state changes: fingerprint a node's report, aggregate nodes, signal the workflow."""

from __future__ import annotations

import hashlib
import json
import logging

from temporalio.service import RPCError, RPCStatusCode

from api.temporal_gate import AGENT_SIGNAL_TIMEOUT, TemporalGate, TemporalUnavailable, bounded
from domain.agent_wire import AgentHeartbeat
from domain.cluster import version_key
from domain.naming import create_workflow_id, manage_workflow_id
from domain.phases import MANAGED_PHASES, Phase
from workflows.contracts import SIGNAL_AGENT_REPORT, AgentReport, NodeStatus

log = logging.getLogger(__name__)


def node_state(beat: AgentHeartbeat) -> dict[str, object]:
    """What of a heartbeat counts as state: a change in any of it is worth a signal."""
    return {
        "node": beat.node.model_dump(mode="json"),
        "control_plane_ready": beat.control_plane_ready,
        "healthy": beat.healthy,
        "message": beat.message,
    }


def fingerprint(state: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _version_sort(version: str) -> tuple[int, int]:
    try:
        return version_key(version)
    except ValueError:
        return (10**6, 0)


def aggregate(states: list[dict[str, object]], fallback_version: str) -> AgentReport:
    """One report over every node: ready if any control plane is, healthy if all nodes are."""
    nodes = [NodeStatus.model_validate(s["node"]) for s in states]
    nodes.sort(key=lambda n: n.hostname)
    versions = sorted({n.kubelet_version for n in nodes if n.kubelet_version}, key=_version_sort)
    messages = [str(s["message"]) for s in states if s.get("message")]
    return AgentReport(
        control_plane_ready=any(bool(s["control_plane_ready"]) for s in states),
        # The oldest kubelet is the version the whole cluster can be said to run.
        kubernetes_version=versions[0] if versions else fallback_version,
        nodes=nodes,
        healthy=all(bool(s["healthy"]) for s in states),
        message="; ".join(sorted(set(messages)))[:2000],
    )


async def signal_report(
    gate: TemporalGate, cluster_id: str, phase: Phase, report: AgentReport
) -> bool:
    """Signal management if the cluster is managed, else create; False if nobody took it."""
    primary, secondary = create_workflow_id(cluster_id), manage_workflow_id(cluster_id)
    if phase in MANAGED_PHASES:
        primary, secondary = secondary, primary
    try:
        client = await gate.client()
    except TemporalUnavailable:
        return False
    for workflow_id in (primary, secondary):
        try:
            handle = client.get_workflow_handle(workflow_id)
            await bounded(handle.signal(SIGNAL_AGENT_REPORT, report), AGENT_SIGNAL_TIMEOUT)
            return True
        except TemporalUnavailable:
            return False
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            log.warning("cluster %s: agent report not signalled: %s", cluster_id, err.message)
            return False
    return False
