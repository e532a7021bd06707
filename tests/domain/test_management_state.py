"""The management workflow's stored state: typed actions, and the old dict-of-strings shape."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.agent_wire import ActionKind, CommandResult, CommandState, NodeReport, NodeRole
from domain.management import (
    PendingAction,
    RepaveAction,
    ScaleAction,
    UpgradeAction,
)

ACTIONS: TypeAdapter[list[PendingAction]] = TypeAdapter(list[PendingAction])

# What ManageState.pending held before it was typed: every value a string.
OLD_PENDING = [
    {"id": "upgrade-1.c-1", "kind": "upgrade", "kubernetes_version": "v1.31.0"},
    {"id": "scale-2.c-1", "kind": "scale", "pool": "workers", "count": "3"},
    {"id": "repave-3.c-1", "kind": "repave", "node": "node-2", "system_id": "abc123"},
]


def test_stored_actions_of_the_old_shape_decode_into_the_typed_ones() -> None:
    upgrade, scale, repave = ACTIONS.validate_python(OLD_PENDING)
    assert upgrade == UpgradeAction(id="upgrade-1.c-1", kubernetes_version="v1.31.0")
    assert scale == ScaleAction(id="scale-2.c-1", pool="workers", count=3)
    assert repave == RepaveAction(id="repave-3.c-1", node="node-2", system_id="abc123")
    assert scale.kind is ActionKind.SCALE


def test_typed_actions_survive_a_round_trip_through_json() -> None:
    actions = ACTIONS.validate_python(OLD_PENDING)
    again = ACTIONS.validate_json(ACTIONS.dump_json(actions))
    assert again == actions
    assert ACTIONS.dump_python(again, mode="json")[1]["count"] == 3


def test_the_detail_line_reads_as_before() -> None:
    _, scale, repave = ACTIONS.validate_python(OLD_PENDING)
    assert scale.detail() == "pool=workers, count=3"
    assert repave.detail() == "node=node-2, system_id=abc123"


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ({"id": "s", "kind": "scale", "pool": "workers", "count": "three"}, "count"),
        ({"id": "s", "kind": "scale", "pool": "workers", "count": "-1"}, "count"),
        ({"id": "s", "kind": "scale", "pool": "Not A Pool", "count": "1"}, "pool"),
        ({"id": "u", "kind": "upgrade", "kubernetes_version": "1.31"}, "kubernetes_version"),
        ({"id": "r", "kind": "repave", "node": "bad\nhost", "system_id": "x"}, "node"),
        ({"id": "u", "kind": "upgrade", "kubernetes_version": "v1.31.0", "extra": "1"}, "extra"),
    ],
)
def test_a_bad_stored_value_is_refused_naming_the_field(stored: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ACTIONS.validate_python([stored])
    assert [e["loc"][-1] for e in refused.value.errors()] == [field]


def test_an_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ValidationError, match=r"tag 'reboot' found using 'kind'.*'repave'"):
        ACTIONS.validate_python([{"id": "x", "kind": "reboot"}])


def test_node_role_and_command_state_are_enums_on_the_wire() -> None:
    node = NodeReport.model_validate({"hostname": "n-1", "role": "control-plane"})
    assert node.role is NodeRole.CONTROL_PLANE
    assert NodeReport(hostname="n-2").role is NodeRole.WORKER
    with pytest.raises(ValidationError, match="role"):
        NodeReport.model_validate({"hostname": "n-1", "role": "master"})
    result = CommandResult.model_validate({"state": "succeeded"})
    assert result.state is CommandState.SUCCEEDED and result.state.done
    assert not CommandState.RUNNING.done
    with pytest.raises(ValidationError, match="state"):
        CommandResult.model_validate({"state": "exploded"})
