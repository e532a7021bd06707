"""`metalgate server frontdoor`: the gateway-facing front door to Temporal."""

from __future__ import annotations

import asyncio

import typer

from runtime.logs import configure_logging
from runtime.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("frontdoor")
    def serve_frontdoor(
        host: str = typer.Option(None, help="bind address (default: METALGATE_BIND_HOST)"),
        port: int = typer.Option(None, help="port (default: METALGATE_FRONTDOOR_PORT)"),
    ) -> None:
        """Serve gateways their own task queue only (gRPC over TLS), forwarding to Temporal."""
        from frontdoor.server import serve
        from workers.gateway import stop_on_signals

        settings = get_settings()
        configure_logging()

        async def main() -> None:
            await serve(
                settings,
                host or settings.bind_host,
                port or settings.frontdoor_port,
                stop_on_signals(),
            )

        asyncio.run(main())
