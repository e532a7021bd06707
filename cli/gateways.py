"""`metalgate gateway create|list|get|delete`: private cloud gateways as the API sees them.

`gateway register` and `gateway run` (running one) live in cli/gateway_node.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

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

GATEWAY_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Version", "version"),
    ("Replicas", "replicas"),
    ("Last seen", "last_seen_at"),
]


def register(gateway_app: typer.Typer) -> None:
    @gateway_app.command("create")
    @handles_api_errors
    def create(
        name: Annotated[str, typer.Option(help="Gateway name, unique in the project.")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a gateway and print the one-time command that registers it."""
        with client(output) as api:
            gateway = api.create_gateway(name)
        if output is OutputFormat.JSON:
            emit_object(gateway, output, [])
            return
        emit_object(
            gateway,
            output,
            [("ID", _gateway_id), ("Name", "name"), ("Token expires", "token_expires_at")],
        )
        command = gateway.get("register_command")
        if command:
            console.print("\nRun this once inside the private network, next to MAAS:")
            console.print(f"  {command}", highlight=False, soft_wrap=True)

    @gateway_app.command("list")
    @handles_api_errors
    def list_(output: OutputOption = OutputFormat.TABLE) -> None:
        """List the project's gateways with their status."""
        with client(output) as api:
            emit_list(api.list_gateways(), output, GATEWAY_COLUMNS)

    @gateway_app.command("get")
    @handles_api_errors
    def get(
        gateway_id: Annotated[str, typer.Argument(help="Gateway ID.")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Show one gateway."""
        with client(output) as api:
            emit_object(api.get_gateway(gateway_id), output, GATEWAY_COLUMNS)

    @gateway_app.command("delete")
    @handles_api_errors
    def delete(
        gateway_id: Annotated[str, typer.Argument(help="Gateway ID.")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Delete a gateway; the API refuses while clusters still need it."""
        with client(output) as api:
            api.delete_gateway(gateway_id)
        emit_message(f"Deleted gateway {gateway_id}", output, {"id": gateway_id})


def _gateway_id(gateway: dict[str, object]) -> object:
    nested = gateway.get("gateway")
    return nested.get("id") if isinstance(nested, dict) else gateway.get("id")
