"""`metalgate cluster plan | pause | resume | nodes`: day-2 operations on top of the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.exit_codes import ExitCode
from cli.login import client
from cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    console,
    emit_list,
    emit_message,
    handles_api_errors,
    print_json,
)

PLAN_COLUMNS: list[Column] = [
    ("Pool", "pool"),
    ("Asked", "asked"),
    ("OK", lambda p: "yes" if p.get("satisfiable") else "no"),
    ("Would take", lambda p: ", ".join(m["hostname"] or m["system_id"] for m in p["would_take"])),
    ("Why not", lambda p: "" if p.get("satisfiable") else p.get("summary", "")),
]
NODE_COLUMNS: list[Column] = [
    (
        "Machine",
        lambda n: f"{n['hostname']} ({n['system_id']})" if n["system_id"] else n["hostname"],
    ),
    ("Zone", "zone"),
    ("Role", "role"),
    ("Version", "kubelet_version"),
    ("Ready", lambda n: "unknown" if n["ready"] is None else ("yes" if n["ready"] else "no")),
    ("Remediation", "remediation"),
]
ClusterId = Annotated[str, typer.Argument(help="Cluster ID or name.")]


def show_plan(plan: dict[str, Any], fmt: OutputFormat) -> None:
    """The plan as a table and its summary; exit FAILED when MAAS cannot serve it."""
    if fmt is OutputFormat.JSON:
        print_json(plan)
    else:
        if plan["pools"]:
            emit_list(plan["pools"], fmt, PLAN_COLUMNS)
        console.print(plan["summary"], markup=False, highlight=False)
    if not plan["satisfiable"]:
        raise typer.Exit(ExitCode.FAILED)


def register(cluster_app: typer.Typer) -> None:
    # Imported here: cli.clusters registers these commands on its own app.
    from cli.clusters import load_spec, pick_account, resolve_cluster

    @cluster_app.command("plan")
    @handles_api_errors
    def plan(
        file: Annotated[
            Path,
            typer.Option("--file", "-f", help="YAML cluster spec.", exists=True, dir_okay=False),
        ],
        account: Annotated[
            str | None,
            typer.Option(help="Cloud account ID; default: the spec's, or the project's only one."),
        ] = None,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Ask MAAS (through the gateway) what a create would take; takes nothing.
        Exits 1 when a pool cannot be served, naming the constraint that fails."""
        spec, spec_account = load_spec(file, output)
        with client(output) as api:
            account_id = account or spec_account or pick_account(api, output)
            answer = api.plan_cluster(spec, cloud_account_id=account_id)
        show_plan(answer, output)

    @cluster_app.command("pause")
    @handles_api_errors
    def pause(cluster_id: ClusterId, output: OutputOption = OutputFormat.TABLE) -> None:
        """Pause management: queued actions wait, new upgrade/scale/repave are refused."""
        with client(output) as api:
            answer = api.pause_cluster(resolve_cluster(api, cluster_id))
        emit_message(answer["message"], output, answer)

    @cluster_app.command("resume")
    @handles_api_errors
    def resume(cluster_id: ClusterId, output: OutputOption = OutputFormat.TABLE) -> None:
        """Resume management: queued actions run again."""
        with client(output) as api:
            answer = api.resume_cluster(resolve_cluster(api, cluster_id))
        emit_message(answer["message"], output, answer)

    @cluster_app.command("nodes")
    @handles_api_errors
    def nodes(cluster_id: ClusterId, output: OutputOption = OutputFormat.TABLE) -> None:
        """The cluster's nodes: machine, zone, role, version, readiness, remediation."""
        with client(output) as api:
            items = api.cluster_nodes(resolve_cluster(api, cluster_id))
        emit_list(items, output, NODE_COLUMNS)
