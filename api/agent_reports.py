"""Agent state changes: fingerprint a node's report, aggregate nodes, signal the workflow."""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

from fastapi import HTTPException
from temporalio.service import RPCError, RPCStatusCode

from api.errors import FieldRefused
from api.temporal_gate import AGENT_SIGNAL_TIMEOUT, TemporalGate, TemporalUnavailable, bounded
from domain.agent_wire import AgentHeartbeat, NodeReport
from domain.cluster import version_key
from domain.maas import Machine
from domain.naming import SIGNAL_AGENT_REPORT, create_workflow_id, manage_workflow_id
from domain.phases import MANAGED_PHASES, Phase
from domain.remediation import ObservedNode
from workflows.contracts import AgentReport

log = logging.getLogger(__name__)


def node_state(beat: AgentHeartbeat) -> dict[str, object]:
    """What of a heartbeat counts as state: a change in any of it is worth a signal."""
    return {
        "node": beat.node.model_dump(mode="json"),
        "control_plane_ready": beat.control_plane_ready,
        "healthy": beat.healthy,
        "message": beat.message,
    }


def _version_sort(version: str) -> tuple[int, int]:
    try:
        return version_key(version)
    except ValueError:
        return (10**6, 0)


def aggregate(
    others: list[dict[str, object]], changed: list[dict[str, object]], fallback_version: str
) -> AgentReport:
    """The changed nodes, and a summary over every node: ready if any control plane is,
    healthy if all nodes are. The workflows merge nodes by hostname, so the signal's size
    grows with what changed, not with the cluster."""
    states = [*others, *changed]
    nodes = [ObservedNode.model_validate(s["node"]) for s in states]
    versions = sorted({n.kubelet_version for n in nodes if n.kubelet_version}, key=_version_sort)
    messages = [str(s["message"]) for s in states if s.get("message")]
    return AgentReport(
        control_plane_ready=any(bool(s["control_plane_ready"]) for s in states),
        # The oldest kubelet is the version the whole cluster can be said to run.
        kubernetes_version=versions[0] if versions else fallback_version,
        nodes=[ObservedNode.model_validate(s["node"]) for s in changed],
        healthy=all(bool(s["healthy"]) for s in states),
        message="; ".join(sorted(set(messages)))[:2000],
    )


# While machines are deployed or replaced, a node's agent may report before its machine is
# recorded: it is told to retry (425 is retried by agents) rather than refused for good.
MACHINES_IN_FLUX = frozenset({Phase.PENDING, Phase.ACQUIRING_MACHINES, Phase.DEPLOYING_OS})
MACHINES_IN_FLUX |= {Phase.SCALING, Phase.REPAVING, Phase.REMEDIATING}


def own_machine(node: NodeReport, machines: list[Any], phase: Phase) -> Machine:
    """The stored machine a report is about; refuses a node that is not one of the cluster's."""
    known = [Machine.model_validate(m) for m in machines]
    machine = next((m for m in known if m.hostname == node.hostname), None)
    if machine is None:
        names = ", ".join(m.hostname for m in known[:10]) or "none recorded yet"
        message = (
            f"{node.hostname!r} is not one of this cluster's machines ({names}); "
            "an agent reports only its own node"
        )
        if phase in MACHINES_IN_FLUX:
            raise HTTPException(425, f"body.node.hostname: {message}; retry once it is recorded")
        raise FieldRefused("body.node.hostname", message)
    if node.system_id and node.system_id != machine.system_id:
        raise FieldRefused(
            "body.node.system_id",
            f"{node.hostname} is MAAS machine {machine.system_id}, not {node.system_id!r}; "
            "send the node's own system id",
        )
    return machine


def first_control_plane(machines: list[Any], control_plane_pool: str) -> Machine | None:
    """The machine that ran `kubeadm init`: the first recorded of the control-plane pool."""
    pool = (Machine.model_validate(m) for m in machines)
    return next((m for m in pool if m.pool == control_plane_pool), None)


class Delivery(StrEnum):
    DELIVERED = "delivered"
    NO_WORKFLOW = "no-workflow"  # neither create nor management runs (yet)
    UNAVAILABLE = "unavailable"  # Temporal did not answer in time
    REFUSED = "refused"  # Temporal answered with an error (e.g. the run's signal limit)


async def signal_report(
    gate: TemporalGate,
    cluster_id: str,
    phase: Phase,
    report: AgentReport,
    within: timedelta = AGENT_SIGNAL_TIMEOUT,
) -> Delivery:
    """Signal management if the cluster is managed, else create (then the other one)."""
    primary, secondary = create_workflow_id(cluster_id), manage_workflow_id(cluster_id)
    if phase in MANAGED_PHASES:
        primary, secondary = secondary, primary
    try:
        client = await gate.client()
    except TemporalUnavailable:
        return Delivery.UNAVAILABLE
    for workflow_id in (primary, secondary):
        try:
            handle = client.get_workflow_handle(workflow_id)
            await bounded(handle.signal(SIGNAL_AGENT_REPORT, report), within)
            return Delivery.DELIVERED
        except TemporalUnavailable:
            return Delivery.UNAVAILABLE
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            if err.status == RPCStatusCode.UNAVAILABLE:
                return Delivery.UNAVAILABLE
            log.warning("cluster %s: agent report not signalled: %s", cluster_id, err.message)
            return Delivery.REFUSED
    return Delivery.NO_WORKFLOW
