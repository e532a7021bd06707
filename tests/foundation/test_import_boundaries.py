"""DESIGN.md "Who may import whom", checked on the source so a wrong import fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {
    "bootstrap", "domain", "frontdoor", "runtime", "store", "embedded", "workflows", "activities", "workers",
    "api", "cli", "maas_emulator", "agent", "bench",
}  # fmt: skip

# Every workflow module but the plain models the API may import.
WORKFLOW_DEFINITIONS = tuple(
    f"workflows.{path.stem}"
    for path in sorted((ROOT / "workflows").glob("*.py"))
    if path.stem not in {"__init__", "contracts"}
)

# (files, forbidden module prefixes, why)
RULES = [
    ("domain", tuple(PROJECT - {"domain"}),
     "domain holds the shapes every layer shares, so it imports no layer above it"),
    ("workflows", ("api", "store", "maas", "activities.maas", "activities.control_plane"),
     "workflows know activity names and inputs, never the API, the store or the MAAS client"),
    ("activities", ("api", "workflows"),
     "activities never import the API, nor the workflows that call them (shared shapes: domain)"),
    ("bootstrap", ("api", "store", "activities", "workflows", "maas"),
     "bootstrap data is pure: control-plane activities store it and render it"),
    ("activities/maas*.py", ("store", "api"), "the gateway lives in another network"),
    ("workers/gateway*.py", ("api", "store"), "the gateway worker has only Temporal"),
    ("api", ("activities.maas", "activities.control_plane", "maas"),
     "the API starts and signals workflows, it never runs activity code"),
    ("api", WORKFLOW_DEFINITIONS,
     "the API imports workflows.contracts (plain models), never a workflow definition"),
    ("maas_emulator", tuple(PROJECT - {"maas_emulator"}), "the emulator stands in for MAAS"),
    ("agent", tuple(PROJECT - {"agent", "domain"}), "the agent talks to the control plane over HTTP"),
    ("agent/backends/real", ("agent.backends.simulated",),
     "the real node backend never imports the simulation"),
    ("agent/node_backend.py", ("agent.backends",),
     "the backend interface knows neither backend"),
]  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files_for(pattern: str) -> list[Path]:
    target = ROOT / pattern
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    return sorted(ROOT.glob(pattern))


@pytest.mark.parametrize(("pattern", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_imports_respect_the_boundaries(pattern: str, forbidden: tuple[str, ...], why: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files_for(pattern)
        for module in imported_modules(path)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]
    assert not offences, f"{why}:\n" + "\n".join(offences)


def test_the_rules_see_real_files() -> None:
    assert files_for("workflows"), "the workflows folder moved; update the boundary rules"
    assert files_for("agent/backends/real"), "the real backend moved; update the boundary rules"
    assert "workflows.create" in WORKFLOW_DEFINITIONS, "the API rule no longer sees workflows"
