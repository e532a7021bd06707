"""`metalgate gateway reissue-token|revoke`: a gateway's credentials over its life."""

from __future__ import annotations

import typer

from cli.gateways import GATEWAY_COLUMNS, GatewayArg
from cli.login import client
from cli.output import OutputFormat, OutputOption, console, emit_object, handles_api_errors


def register(gateway_app: typer.Typer) -> None:
    @gateway_app.command("reissue-token")
    @handles_api_errors
    def reissue_token(gateway_id: GatewayArg, output: OutputOption = OutputFormat.TABLE) -> None:
        """A new one-time registration token; registering with it replaces the secret."""
        with client(output) as api:
            gateway_id = api.resolve("gateways", gateway_id)
            made = api.request("POST", f"/v1/gateways/{gateway_id}/registration-token", json={})
        emit_object(made, output, [("ID", "gateway.id"), ("Token expires", "expires_at")])
        if output is OutputFormat.TABLE:
            console.print("\nRun this once on the gateway host:")
            console.print(
                f"  {made['register_command']}", markup=False, highlight=False, soft_wrap=True
            )

    @gateway_app.command("revoke")
    @handles_api_errors
    def revoke(gateway_id: GatewayArg, output: OutputOption = OutputFormat.TABLE) -> None:
        """Revoke a gateway: its credential stops working; its clusters show GatewayRevoked."""
        with client(output) as api:
            gateway_id = api.resolve("gateways", gateway_id)
            gateway = api.request("POST", f"/v1/gateways/{gateway_id}/revoke")
        emit_object(gateway, output, GATEWAY_COLUMNS)
