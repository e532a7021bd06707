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
    from cli.clusters import load_spec, pick_account

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
