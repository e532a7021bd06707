"""The remediation ladder's decisions, as pure functions over the management state.

A node that is NotReady (or silent while its machine is Deployed) longer than its pool's
`remediation.unhealthy_seconds` gets the next step: power cycle, then redeploy the same
machine, then replace it with a fresh one (the old one is quarantined). Each step gets the same
time to bring the node back before the next one is due. Guards hold a step back: remediation
turned off (cluster or pool), too many of the pool in remediation, or a control-plane step
that would leave etcd without quorum.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.agent_wire import NodeReport
from domain.cluster import ClusterSpec
from domain.maas import Machine
from domain.text import Hostname


class ObservedNode(NodeReport):
    """A node as the control plane knows it: its agent's last report or, once that agent went
    silent while the cluster's others report (store/node_silence.py), that report not Ready
    with `silent_since`. Never sent by an agent: the API builds it from what it stored."""

    # Built from plain NodeReports too (tests, older callers): read them by attribute.
    model_config = ConfigDict(from_attributes=True)

    silent_since: float | None = Field(
        default=None, description="unix time the node's agent was last heard from, if silent"
    )


class RemediationStep(StrEnum):
    POWER_CYCLE = "power-cycle"
    REDEPLOY = "redeploy"
    REPLACE = "replace"


LADDER = (RemediationStep.POWER_CYCLE, RemediationStep.REDEPLOY, RemediationStep.REPLACE)


class NodeRemediation(BaseModel):
    """One unhealthy node's place on the ladder; dropped once the node is Ready again."""

    model_config = ConfigDict(extra="forbid")

    hostname: Hostname
    system_id: str
    pool: str
    unhealthy_since: float
    # The last step taken, and when: the next one is due a threshold after it.
    step: RemediationStep | None = None
    step_at: float = 0.0
    # Why the next step is held back, recorded once per new reason.
    blocked: str = ""
    # Its own agent is silent (not a NotReady report): said so in the step's reason.
    agent_silent: bool = False

    @property
    def active(self) -> bool:
        """Counts against max_in_remediation: a step was taken and the node is not back."""
        return self.step is not None

    def label(self) -> str:
        """What the node view shows in its remediation column."""
        if self.blocked:
            return f"blocked: {self.blocked}"
        return str(self.step) if self.step else "watching"


def healthy(machine: Machine, nodes: dict[str, ObservedNode], agent_silent: bool) -> bool:
    """A node is healthy when its agent reports it Ready and the agent is not silent.

    A machine with no report yet is left alone: it may still be joining.
    """
    report = nodes.get(machine.hostname)
    if report is None:
        return True
    return report.ready and not agent_silent


def observe(
    tracked: list[NodeRemediation],
    machines: list[Machine],
    nodes: list[ObservedNode] | list[NodeReport],
    *,
    agent_silent: bool,
    now: float,
) -> tuple[list[NodeRemediation], list[NodeRemediation]]:
    """Track newly unhealthy nodes and drop recovered ones: answers (tracked, recovered).

    A node whose own agent went silent is unhealthy since it was last heard from (never
    later than `now`), so the pool's threshold counts from its last heartbeat.
    """
    reports = {n.hostname: ObservedNode.model_validate(n) for n in nodes}
    known = {t.system_id: t for t in tracked}
    kept: list[NodeRemediation] = []
    recovered: list[NodeRemediation] = []
    for machine in machines:
        entry = known.pop(machine.system_id, None)
        if healthy(machine, reports, agent_silent):
            if entry is not None:
                recovered.append(entry)
            continue
        silent_since = reports[machine.hostname].silent_since if not agent_silent else None
        if entry is None:
            since = now if silent_since is None else min(now, silent_since)
            entry = NodeRemediation(
                hostname=machine.hostname,
                system_id=machine.system_id,
                pool=machine.pool,
                unhealthy_since=since,
            )
        entry.agent_silent = silent_since is not None
        kept.append(entry)
    return kept, recovered


def next_step(entry: NodeRemediation) -> RemediationStep | None:
    """The step after the last one taken; None once the ladder is used up."""
    if entry.step is None:
        return LADDER[0]
    index = LADDER.index(entry.step) + 1
    return LADDER[index] if index < len(LADDER) else None


def is_due(entry: NodeRemediation, spec: ClusterSpec, now: float) -> bool:
    """Unhealthy for the pool's threshold since it was seen so, or since the last step."""
    pool = spec.pool(entry.pool)
    if pool is None or next_step(entry) is None:
        return False
    since = entry.step_at if entry.step is not None else entry.unhealthy_since
    return now - since >= pool.remediation.unhealthy_seconds


def next_due_at(tracked: list[NodeRemediation], spec: ClusterSpec) -> float | None:
    """When the soonest step falls due (to wake up for it), or None when none can."""
    times = []
    for entry in tracked:
        pool = spec.pool(entry.pool)
        if pool is None or next_step(entry) is None:
            continue
        since = entry.step_at if entry.step is not None else entry.unhealthy_since
        times.append(since + pool.remediation.unhealthy_seconds)
    return min(times) if times else None


def quorum(members: int) -> int:
    return members // 2 + 1


def refusal(
    entry: NodeRemediation,
    tracked: list[NodeRemediation],
    spec: ClusterSpec,
    machines: list[Machine],
) -> str | None:
    """Why the entry's next step may not run now, or None when it may."""
    pool = spec.pool(entry.pool)
    if pool is None:
        return f"pool {entry.pool} is not in the spec"
    if not spec.remediation_enabled:
        return "remediation is turned off for the cluster (remediation_enabled: false)"
    if not pool.remediation.enabled:
        return f"remediation is turned off for pool {pool.name} (remediation.enabled: false)"
    if not entry.active:
        in_pool = [t for t in tracked if t.pool == pool.name and t.active]
        size = sum(1 for m in machines if m.pool == pool.name)
        limit = pool.remediation.max_nodes(size)
        if len(in_pool) >= limit:
            return (
                f"{len(in_pool)} of pool {pool.name} already in remediation "
                f"(max_in_remediation {pool.remediation.max_in_remediation})"
            )
    if pool.name == spec.control_plane.name:
        members = [m for m in machines if m.pool == pool.name]
        unhealthy = {t.system_id for t in tracked}
        others_healthy = sum(1 for m in members if m.system_id not in unhealthy)
        need = quorum(len(members))
        if others_healthy < need:
            return (
                f"etcd quorum: {others_healthy} other healthy control-plane node(s), "
                f"{need} of {len(members)} needed while {entry.hostname} is repaired"
            )
    return None
