"""What the management workflow stores between runs: its queued actions, as typed models.

Queued actions are carried whole across continue-as-new, so each is checked when it is queued:
a value a later run could not decode is refused before it is stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.agent_wire import ActionKind, SystemId
from domain.cluster import MAX_NODES_PER_POOL, Name
from domain.remediation import RemediationStep
from domain.text import Hostname, Label, Message
from domain.versions import KubernetesVersion

# An action id, `<kind>-<seq>.<cluster id>`: also the id of the agent command it becomes.
ActionId = Label


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ActionId

    def detail(self) -> str:
        """The action's arguments as `name=value` pairs, for event lines and answers."""
        args = self.model_dump(mode="json", exclude={"id", "kind"})
        return ", ".join(f"{name}={value}" for name, value in args.items())


class UpgradeAction(_Action):
    kind: Literal[ActionKind.UPGRADE] = ActionKind.UPGRADE
    kubernetes_version: KubernetesVersion


class ScaleAction(_Action):
    kind: Literal[ActionKind.SCALE] = ActionKind.SCALE
    pool: Name
    # Not strict: histories recorded before these models stored the count as a string ("3").
    count: int = Field(ge=0, le=MAX_NODES_PER_POOL)


class RepaveAction(_Action):
    """Replace one node (`node`, `system_id`) or a whole pool, rolling (see workflows.repave)."""

    kind: Literal[ActionKind.REPAVE] = ActionKind.REPAVE
    node: Hostname | None = None
    system_id: SystemId = ""
    pool: Name | None = None

    @model_validator(mode="after")
    def _node_or_pool(self) -> RepaveAction:
        if (self.node is None) == (self.pool is None):
            raise ValueError("a repave names either a node or a pool")
        return self

    def detail(self) -> str:
        args = self.model_dump(mode="json", exclude={"id", "kind"}, exclude_defaults=True)
        return ", ".join(f"{name}={value}" for name, value in args.items())


class NodeAction(_Action):
    """Cordon, drain or uncordon one node, through the agent."""

    kind: Literal[ActionKind.CORDON, ActionKind.DRAIN, ActionKind.UNCORDON]
    node: Hostname
    system_id: SystemId


class RemediateAction(_Action):
    """One step of the remediation ladder for one unhealthy node (see domain.remediation)."""

    kind: Literal[ActionKind.REMEDIATE] = ActionKind.REMEDIATE
    node: Hostname
    system_id: SystemId
    step: RemediationStep
    reason: Message


# One queued action, told apart by `kind`; the old dict-of-strings shape reads as one of these.
PendingAction = Annotated[
    UpgradeAction | ScaleAction | RepaveAction | RemediateAction | NodeAction,
    Field(discriminator="kind"),
]
