"""The live view of a cluster being created or deleted: its phases and one progress bar per machine.

Kept apart from the commands so the rendering can be tested on plain cluster dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import Group, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from domain.phases import CREATE_PHASES, REASON_HINTS, Phase

if TYPE_CHECKING:
    from runtime.settings import Settings

# A machine's way from Ready in MAAS to a Kubernetes node; the last step is the agent's report.
MACHINE_STEPS = ("Allocated", "Deploying", "Deployed", "Node ready")
MACHINE_FAILED = ("Failed deployment", "Failed", "Broken")


def machine_progress(machine: dict[str, Any], cluster_phase: str) -> tuple[int, str]:
    """How many of MACHINE_STEPS a machine has done, and the label to show."""
    status = str(machine.get("status") or "")
    if status in MACHINE_FAILED:
        return 0, f"[red]{status}[/red]"
    if machine.get("node_ready") or cluster_phase == Phase.RUNNING:
        return len(MACHINE_STEPS), "Node ready"
    if status in MACHINE_STEPS:
        return MACHINE_STEPS.index(status) + 1, status
    return 0, status or "Waiting"


def reason_line(cluster: dict[str, Any]) -> str | None:
    """`Reason: message (hint)`, or None when the cluster has no reason to show."""
    reason = cluster.get("reason")
    if not reason:
        return None
    message = cluster.get("message") or ""
    line = f"{reason}: {message}" if message else str(reason)
    # The API sends the hint; the local table covers an older API that does not.
    hint = cluster.get("hint") or next((h for r, h in REASON_HINTS.items() if r == reason), None)
    return f"{line} ({hint})" if hint else line


def management_line(cluster: dict[str, Any]) -> str:
    """Whether management runs, or since when it is paused and what that holds back."""
    if not cluster.get("management_paused"):
        return "active"
    return (
        f"paused since {cluster.get('management_paused_at')}: queued actions and remediation "
        "wait (metalgate cluster resume)"
    )


def create_workflow_link(cluster: dict[str, Any], settings: Settings | None = None) -> str:
    """The Temporal Web UI page of the cluster's create workflow, on the UI the API reports."""
    # Imported here: both pull in temporalio, which `cluster list` must not pay for.
    from domain.naming import create_workflow_id
    from runtime.settings import Settings

    workflow_id = cluster.get("create_workflow_id") or create_workflow_id(str(cluster["id"]))
    reported = str(cluster.get("temporal_ui_url") or "")
    if "/workflows/" in reported:
        base = reported.split("/workflows/")[0]
    else:
        settings = settings or Settings()
        base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}"
    return f"{base}/workflows/{quote(str(workflow_id), safe='')}"


class ClusterView:
    """A rich renderable refreshed from successive GETs of one cluster."""

    def __init__(self, phases: tuple[Phase, ...] = CREATE_PHASES) -> None:
        self.phases = phases
        self.cluster: dict[str, Any] = {}
        self.progress = Progress(
            TextColumn("  {task.fields[hostname]:<24} {task.fields[pool]:<16}"),
            BarColumn(),
            TextColumn("{task.fields[label]}"),
        )
        self._tasks: dict[str, TaskID] = {}

    def update(self, cluster: dict[str, Any]) -> None:
        self.cluster = cluster
        phase = str(cluster.get("phase", ""))
        for machine in cluster.get("machines") or []:
            key = str(machine.get("system_id") or machine.get("hostname"))
            done, label = machine_progress(machine, phase)
            hostname = machine.get("hostname") or key
            pool = machine.get("pool") or ""
            if key not in self._tasks:
                self._tasks[key] = self.progress.add_task(
                    "", total=len(MACHINE_STEPS), hostname=hostname, pool=pool, label=label
                )
            self.progress.update(
                self._tasks[key], completed=done, hostname=hostname, pool=pool, label=label
            )

    def __rich__(self) -> RenderableType:
        phase = str(self.cluster.get("phase", Phase.PENDING))
        title = Text.assemble(
            ("cluster ", "bold"),
            (str(self.cluster.get("name", "")), "bold cyan"),
            f"  {self.cluster.get('id', '')}",
        )
        parts: list[RenderableType] = [title, self._phase_table(phase)]
        line = reason_line(self.cluster)
        if line:
            style = "red" if phase == Phase.FAILED else "yellow"
            parts.append(Text(f"  {line}", style=style))
        if self._tasks:
            parts.append(self.progress)
        return Group(*parts)

    def _phase_table(self, phase: str) -> Table:
        table = Table.grid(padding=(0, 1))
        if phase not in self.phases:  # e.g. Failed, or Deleting while a create was watched
            style = "red bold" if phase == Phase.FAILED else "yellow bold"
            table.add_row(Text("  x" if phase == Phase.FAILED else "  >", style=style), phase)
            return table
        current = self.phases.index(Phase(phase))
        last = len(self.phases) - 1
        for index, step in enumerate(self.phases):
            if index < current or index == current == last:
                mark, style = "  ✓", "green"
            elif index == current:
                mark, style = "  >", "yellow bold"
            else:
                mark, style = "  ·", "dim"
            table.add_row(Text(mark, style=style), Text(step, style=style))
        return table
