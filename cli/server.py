"""`metalgate server api`: the HTTP API under uvicorn."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("api")
    def serve_api(
        host: str = typer.Option(None, help="bind address (default: METALGATE_BIND_HOST)"),
        port: int = typer.Option(None, help="port (default: METALGATE_API_PORT)"),
        log_level: str = typer.Option("info", help="uvicorn log level"),
        access_log: bool = typer.Option(
            False, help="log every request (off: at fleet scale it is one line per heartbeat)"
        ),
    ) -> None:
        """Serve the control-plane API (OpenAPI docs at /docs)."""
        # Imported here: every other command would otherwise pay for FastAPI and the store.
        import uvicorn

        from api.app import create_app
        from runtime.logs import configure_logging
        from runtime.settings import get_settings

        settings = get_settings()
        configure_logging(log_level)
        uvicorn.run(
            create_app(settings),
            host=host or settings.bind_host,
            port=port or settings.api_port,
            log_level=log_level,
            access_log=access_log,
            # JSON logs: uvicorn's loggers go through ours instead of its own text config.
            log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        )
