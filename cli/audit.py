"""`metalgate audit`: who did what in the project, newest first (needs an admin key)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.login import client
from cli.output import Column, OutputFormat, OutputOption, console, emit_list, handles_api_errors

AUDIT_COLUMNS: list[Column] = [
    ("Time", "at"),
    ("Actor", "actor_name"),
    ("Actor ID", "actor_id"),
    ("Action", "action"),
    ("Target", "target"),
    ("Outcome", "outcome"),
    ("Status", "status_code"),
    ("Request", "request_id"),
]


def register(app: typer.Typer) -> None:
    @app.command("audit")
    @handles_api_errors
    def audit(
        project_id: Annotated[
            str | None, typer.Option(help="Project (operator key only; default: the key's).")
        ] = None,
        actor_id: Annotated[str | None, typer.Option(help="API key or gateway id.")] = None,
        action: Annotated[
            str | None, typer.Option(help="Action prefix, e.g. 'DELETE /v1/clusters'.")
        ] = None,
        outcome: Annotated[str | None, typer.Option(help="ok, refused, rejected or error.")] = None,
        since: Annotated[str | None, typer.Option(help="ISO time with zone.")] = None,
        limit: Annotated[int, typer.Option(help="Entries per page.")] = 50,
        before: Annotated[int | None, typer.Option(help="`next_before` of the last page.")] = None,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """List audit log entries (filters combine), newest first."""
        params = {
            "project_id": project_id,
            "actor_id": actor_id,
            "action": action,
            "outcome": outcome,
            "since": since,
            "limit": limit,
            "before": before,
        }
        with client(output) as api:
            page = api.request("GET", "/v1/audit", params=params)
        emit_list(page["items"], output, AUDIT_COLUMNS)
        if output is OutputFormat.TABLE and page["next_before"]:
            console.print(f"\nolder entries: --before {page['next_before']}")
