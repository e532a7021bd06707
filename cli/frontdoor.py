"""`metalgate server frontdoor`: the gateway-facing front door to Temporal."""

from __future__ import annotations

from pathlib import Path

import typer

from runtime.logs import configure_logging
from runtime.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("frontdoor")
    def serve_frontdoor(
        host: str = typer.Option(None, help="bind address (default: METALGATE_BIND_HOST)"),
        port: int = typer.Option(None, help="port (default: METALGATE_FRONTDOOR_PORT)"),
        make_tls: Path | None = typer.Option(
            None,
            help="create a CA and certificate in this folder if the configured files are "
            "missing (ca.pem, cert.pem, key.pem; for evaluation, not production)",
        ),
        tls_name: list[str] = typer.Option(
            [], help="name or IP address gateways use to reach the front door (repeatable)"
        ),
    ) -> None:
        """Serve gateways their own task queue only (gRPC over TLS), forwarding to Temporal."""
        from frontdoor.server import serve
        from frontdoor.tls import development_tls
        from workers.gateway import stop_on_signals

        settings = get_settings()
        configure_logging()
        if make_tls is not None:
            development_tls(make_tls, [*tls_name, "localhost", "127.0.0.1"])

        async def main() -> None:
            await serve(
                settings,
                host or settings.bind_host,
                port or settings.frontdoor_port,
                stop_on_signals(),
            )

        from runtime.process import run_service

        run_service(main())
