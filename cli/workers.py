"""`metalgate worker control-plane|system-gateway`: the workers the control plane runs."""

from __future__ import annotations

import typer

from runtime.logs import configure_logging
from runtime.process import run_service
from runtime.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("control-plane")(control_plane)
    app.command("system-gateway")(system_gateway)


def control_plane() -> None:
    """Run workflows and control-plane activities on the `control-plane` queue."""
    from runtime.metrics import install_temporal_metrics
    from workers.control_plane import run_control_plane_worker

    configure_logging()
    install_temporal_metrics(get_settings().metrics_address())
    run_service(run_control_plane_worker(get_settings()))


def system_gateway() -> None:
    """Run the MAAS activities on `gateway.system` (self-hosted mode only)."""
    from workers.gateway import run_system_gateway

    settings = get_settings()
    if settings.mode != "self-hosted":
        typer.echo("the system gateway runs only in self-hosted mode; use a PCG", err=True)
        raise typer.Exit(2)
    from runtime.metrics import install_temporal_metrics

    configure_logging()
    install_temporal_metrics(settings.metrics_address())
    run_service(run_system_gateway(settings))
