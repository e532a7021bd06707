"""Cluster conditions in Cluster API's style: one per gate, False with a reason while the
cluster waits on it (or failed at it), True once passed, stamped when its status last changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from domain.phases import MANAGED_PHASES, Phase, Reason


class ConditionType(StrEnum):
    """The gates, in the order they are shown."""

    MACHINES_ACQUIRED = "MachinesAcquired"
    OS_DEPLOYED = "OSDeployed"
    CONTROL_PLANE_READY = "ControlPlaneReady"
    NODES_READY = "NodesReady"
    AGENT_CONNECTED = "AgentConnected"
    MACHINES_RELEASED = "MachinesReleased"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"


class Condition(BaseModel):
    type: ConditionType
    status: ConditionStatus
    reason: Reason | None = None
    message: str = ""
    last_transition_time: str


# The create saga's gates in order: the phase that waits on each, and the reason it waits with
# when the saga gives none.
CREATE_GATES: tuple[tuple[Phase, ConditionType, Reason], ...] = (
    (Phase.ACQUIRING_MACHINES, ConditionType.MACHINES_ACQUIRED, Reason.WAITING_FOR_MACHINES),
    (Phase.DEPLOYING_OS, ConditionType.OS_DEPLOYED, Reason.WAITING_FOR_DEPLOYMENT),
    (
        Phase.BOOTSTRAPPING_CONTROL_PLANE,
        ConditionType.CONTROL_PLANE_READY,
        Reason.WAITING_FOR_AGENT,
    ),
    (Phase.JOINING_NODES, ConditionType.NODES_READY, Reason.WAITING_FOR_AGENT),
)
_ORDER = list(ConditionType)

Mark = tuple[ConditionType, ConditionStatus, Reason | None, str]


def _marks(
    current: dict[ConditionType, Condition], phase: Phase, reason: Reason | None, message: str
) -> list[Mark]:
    """What a status write says about each gate it touches."""
    passed = [(gate, ConditionStatus.TRUE, None, "") for _, gate, _ in CREATE_GATES]
    gates = [p for p, _, _ in CREATE_GATES]
    if phase in gates:
        i = gates.index(phase)
        _, gate, waiting = CREATE_GATES[i]
        return [*passed[:i], (gate, ConditionStatus.FALSE, reason or waiting, message)]
    if phase in MANAGED_PHASES:
        if reason == Reason.AGENT_SILENT:
            agent: Mark = (ConditionType.AGENT_CONNECTED, ConditionStatus.FALSE, reason, message)
        else:
            agent = (ConditionType.AGENT_CONNECTED, ConditionStatus.TRUE, None, "")
        return [*passed, agent]
    if phase == Phase.FAILED:
        failing = next(
            (
                gate
                for _, gate, _ in CREATE_GATES
                if gate not in current or current[gate].status != ConditionStatus.TRUE
            ),
            None,
        )
        if failing is None:
            return []
        return [(failing, ConditionStatus.FALSE, reason or Reason.INTERNAL_ERROR, message)]
    if phase == Phase.DELETING:
        return [
            (
                ConditionType.MACHINES_RELEASED,
                ConditionStatus.FALSE,
                reason or Reason.WAITING_FOR_RELEASE,
                message,
            )
        ]
    if phase == Phase.DELETED:
        return [(ConditionType.MACHINES_RELEASED, ConditionStatus.TRUE, None, "")]
    return []  # Pending: no gate reached yet


def apply_status(
    conditions: list[Condition], phase: Phase, reason: Reason | None, message: str, at: str
) -> list[Condition]:
    """The conditions after a status write of `phase` and `reason` at time `at` (ISO 8601)."""
    current = {c.type: c for c in conditions}
    for gate, status, why, text in _marks(current, phase, reason, message):
        old = current.get(gate)
        since = old.last_transition_time if old is not None and old.status == status else at
        current[gate] = Condition(
            type=gate, status=status, reason=why, message=text, last_transition_time=since
        )
    return sorted(current.values(), key=lambda c: _ORDER.index(c.type))


def _reason(value: Any) -> Reason | None:
    return Reason(value) if value in Reason._value2member_map_ else None


def read_conditions(stored: Sequence[Mapping[str, Any]]) -> list[Condition]:
    """Stored conditions; the old shape (one per phase reached) is replayed through the gates."""
    conditions: list[Condition] = []
    for raw in stored:
        kind = raw.get("type")
        if kind in ConditionType._value2member_map_:
            new = Condition.model_validate(raw)
            conditions = [c for c in conditions if c.type != new.type] + [new]
            conditions.sort(key=lambda c: _ORDER.index(c.type))
        else:
            conditions = apply_status(
                conditions,
                Phase(str(kind)),
                _reason(raw.get("reason")),
                str(raw.get("message") or ""),
                str(raw.get("last_transition_time")),
            )
    return conditions
