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
    ("Last seen", "last_seen"),
    ("Detail", "status_detail"),
]
GatewayArg = Annotated[str, typer.Argument(help="Gateway ID or name.")]


def register(gateway_app: typer.Typer) -> None:
    @gateway_app.command("create")
    @handles_api_errors
    def create(
        name: Annotated[str, typer.Option(help="Gateway name, unique in the project.")],
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Create a gateway and print the one-time command that registers it."""
        with client(output) as api:
            created = api.create_gateway(name)
        emit_object(
            created,
            output,
            [("ID", "gateway.id"), ("Name", "gateway.name"), ("Token expires", "expires_at")],
        )
        if output is OutputFormat.TABLE:
            # The token is one-time and expiring: say so next to the only place it appears.
            console.print("\nRun this once inside the private network, next to MAAS:")
            console.print(
                f"  {created['register_command']}", markup=False, highlight=False, soft_wrap=True
            )

    @gateway_app.command("list")
    @handles_api_errors
    def list_(output: OutputOption = OutputFormat.TABLE) -> None:
        """List the project's gateways with their status."""
        with client(output) as api:
            emit_list(api.list_gateways(), output, GATEWAY_COLUMNS)

    @gateway_app.command("get")
    @handles_api_errors
    def get(
        gateway_id: GatewayArg,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Show one gateway."""
        with client(output) as api:
            gateway = api.get_gateway(api.resolve("gateways", gateway_id))
        emit_object(gateway, output, GATEWAY_COLUMNS)

    @gateway_app.command("delete")
    @handles_api_errors
    def delete(
        gateway_id: GatewayArg,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Delete a gateway; the API refuses while clusters still need it."""
        with client(output) as api:
            gateway_id = api.resolve("gateways", gateway_id)
            api.delete_gateway(gateway_id)
        emit_message(f"Deleted gateway {gateway_id}", output, {"id": gateway_id})
