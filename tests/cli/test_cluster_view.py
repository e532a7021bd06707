"""The live cluster view renders what the API reports, including failures and their hints."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from cli.cluster_view import (
    MACHINE_STEPS,
    ClusterView,
    create_workflow_link,
    machine_progress,
    management_line,
    reason_line,
)
from domain.phases import REASON_HINTS, Reason
from runtime.settings import Settings


def cluster(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "cl-1", "name": "demo", "phase": "Pending", "machines": []}
    return {**base, **fields}


def render(view: ClusterView) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(view)
    return console.export_text()


def test_machine_progress_follows_maas_status() -> None:
    assert machine_progress({"status": "Allocated"}, "AcquiringMachines") == (1, "Allocated")
    assert machine_progress({"status": "Deployed"}, "WaitingForAgent") == (3, "Deployed")
    assert machine_progress({"status": "Deployed"}, "Running")[0] == len(MACHINE_STEPS)
    assert machine_progress({"status": "Failed deployment"}, "DeployingOS")[0] == 0


def test_view_marks_done_current_and_pending_phases_and_machines() -> None:
    view = ClusterView()
    machines = [
        {"system_id": "abc", "hostname": "node-1", "pool": "control-plane", "status": "Deploying"},
        {"system_id": "def", "hostname": "node-2", "pool": "workers", "status": "Allocated"},
    ]
    view.update(cluster(phase="DeployingOS", machines=machines))
    text = render(view)
    assert "✓ Pending" in text and "✓ AcquiringMachines" in text
    assert "> DeployingOS" in text and "· Running" in text
    assert "node-1" in text and "Deploying" in text and "node-2" in text


def test_failed_cluster_shows_reason_and_hint() -> None:
    view = ClusterView()
    failed = cluster(phase="Failed", reason="InsufficientCapacity", message="need 3, found 1")
    view.update(failed)
    text = render(view)
    assert "Failed" in text
    assert REASON_HINTS[Reason.INSUFFICIENT_CAPACITY] in text
    line = reason_line(failed)
    assert line is not None and line.startswith("InsufficientCapacity: need 3, found 1")


def test_create_workflow_link_uses_the_api_reported_ui() -> None:
    reported = cluster(
        create_workflow_id="cluster/cl-1/create",
        temporal_ui_url="http://ui:8233/namespaces/prod/workflows/cluster%2Fcl-1%2Fmanage",
    )
    assert create_workflow_link(reported) == (
        "http://ui:8233/namespaces/prod/workflows/cluster%2Fcl-1%2Fcreate"
    )
    settings = Settings(temporal_ui_url="http://127.0.0.1:8233/", temporal_namespace="default")
    assert create_workflow_link(cluster(), settings) == (
        "http://127.0.0.1:8233/namespaces/default/workflows/cluster%2Fcl-1%2Fcreate"
    )


def test_management_line_says_when_it_was_paused() -> None:
    assert management_line(cluster(phase="Running")) == "active"
    paused = cluster(management_paused=True, management_paused_at="2025-01-02T03:04:05Z")
    assert management_line(paused) == (
        "paused since 2025-01-02T03:04:05Z: queued actions and remediation wait "
        "(metalgate cluster resume)"
    )
