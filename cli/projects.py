"""`metalgate project create|key-create`: tenants and their API keys (needs an admin key)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.schemas.projects import Role
from cli.login import client
from cli.output import (
    Column,
    OutputFormat,
    OutputOption,
    console,
    emit_list,
    emit_object,
    handles_api_errors,
)

PROJECT_COLUMNS: list[Column] = [("ID", "id"), ("Name", "name"), ("Created", "created_at")]


def register(app: typer.Typer) -> None:
    project_app = typer.Typer(help="Projects and their API keys.", no_args_is_help=True)
    app.add_typer(project_app, name="project")

    @project_app.command("create")
    @handles_api_errors
    def create(
        name: Annotated[str, typer.Argument(help="Project name.")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a project."""
        with client(output) as api:
            project = api.create_project(name)
        emit_object(project, output, PROJECT_COLUMNS)

    @project_app.command("list")
    @handles_api_errors
    def list_(output: OutputOption = OutputFormat.TABLE) -> None:
        """List projects: every one for the operator key, else the key's own."""
        with client(output) as api:
            emit_list(api.list_projects(), output, PROJECT_COLUMNS)

    @project_app.command("key-create")
    @handles_api_errors
    def key_create(
        project_id: Annotated[str, typer.Argument(help="Project ID.")],
        name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
        role: Annotated[Role, typer.Option(help="What the key may do.")] = Role.VIEWER,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create an API key for a project; the key is shown only this once."""
        with client(output) as api:
            key = api.create_api_key(project_id, name=name, role=role.value)
        emit_object(
            key,
            output,
            [("ID", "id"), ("Name", "name"), ("Role", "role"), ("Key", "key")],
        )
        if output is OutputFormat.TABLE:
            console.print("[yellow]Store the key now: the API never shows it again.[/yellow]")
