"""Phases and reasons: one name for each, a hint for each reason, old names still decode."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from domain.phases import REASON_HINTS, Phase, Reason

ROOT = Path(__file__).resolve().parents[2]


def test_every_reason_has_a_hint() -> None:
    assert [r for r in Reason if not REASON_HINTS.get(r)] == []


def test_no_phase_shares_its_name_with_a_reason() -> None:
    assert {p.value for p in Phase} & {r.value for r in Reason} == set()


def test_the_old_name_of_the_joining_nodes_phase_still_decodes() -> None:
    class Stored(BaseModel):
        phase: Phase

    assert Phase("WaitingForAgent") is Phase.JOINING_NODES
    assert Stored.model_validate({"phase": "WaitingForAgent"}).phase is Phase.JOINING_NODES
    assert Stored.model_validate_json('{"phase": "WaitingForAgent"}').phase is Phase.JOINING_NODES


def _string_error_types(path: Path) -> list[str]:
    """`ApplicationError(type="Literal" or ERR_*)` calls: failures named beside Reason."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ApplicationError":
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg != "type":
                    continue
                if isinstance(value, ast.Constant) or getattr(value, "id", "").startswith("ERR_"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(value)}")
    return found


def test_failures_are_named_by_reason_members_only() -> None:
    sources = [p for d in ("activities", "workflows") for p in (ROOT / d).rglob("*.py")]
    assert [hit for p in sources for hit in _string_error_types(p)] == []
