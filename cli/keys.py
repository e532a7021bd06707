"""`metalgate keys list|create|revoke`: a project's API keys (needs a project admin key)."""

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
    emit_message,
    emit_object,
    handles_api_errors,
)

KEY_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Role", "role"),
    ("Created", "created_at"),
    ("Last used", "last_used_at"),
    ("Expires", "expires_at"),
]
ProjectArg = Annotated[str, typer.Argument(help="Project ID.")]


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="A project's API keys.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @keys_app.command("list")
    @handles_api_errors
    def list_(project_id: ProjectArg, output: OutputOption = OutputFormat.TABLE) -> None:
        """List the keys that work or expired (never their secrets)."""
        with client(output) as api:
            keys = api.request("GET", f"/v1/projects/{project_id}/api-keys")
        emit_list(keys, output, KEY_COLUMNS)

    @keys_app.command("create")
    @handles_api_errors
    def create(
        project_id: ProjectArg,
        name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
        role: Annotated[Role, typer.Option(help="What the key may do.")] = Role.VIEWER,
        expires_in_days: Annotated[
            int | None, typer.Option(help="The key stops working after this many days.")
        ] = None,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a key; its secret is shown only this once."""
        body = {"name": name, "role": role.value, "expires_in_days": expires_in_days}
        with client(output) as api:
            key = api.request("POST", f"/v1/projects/{project_id}/api-keys", json=body)
        emit_object(key, output, [*KEY_COLUMNS, ("Key", "key")])
        if output is OutputFormat.TABLE:
            console.print("\nKeep the key now: it is not shown again.")

    @keys_app.command("revoke")
    @handles_api_errors
    def revoke(
        project_id: ProjectArg,
        key_id: Annotated[str, typer.Argument(help="Key ID (see `metalgate keys list`).")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Revoke a key; it stops working at once on every API replica."""
        with client(output) as api:
            api.request("DELETE", f"/v1/projects/{project_id}/api-keys/{key_id}")
        emit_message(f"Revoked API key {key_id}", output, {"id": key_id})
