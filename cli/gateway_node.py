"""`metalgate gateway register|run`: install and run a private cloud gateway (PCG)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from runtime.logs import configure_logging
from workers.gateway_config import GatewayConfig, default_config_path, load_config, write_config

if TYPE_CHECKING:
    from domain.sealing import SealingKeyPair

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Gateway config file (default $METALGATE_GATEWAY_CONFIG or "
        "~/.config/metalgate/gateway.json).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("register")(register_command)
    app.command("run")(run_command)


def register_command(
    api_url: Annotated[str, typer.Option(help="Control-plane API URL.")],
    token: Annotated[str, typer.Option(help="One-time registration token.")],
    config: ConfigOption = None,
    http_proxy: Annotated[
        str | None, typer.Option(help="HTTP proxy URL for calls to the API.")
    ] = None,
    temporal_proxy: Annotated[
        str | None,
        typer.Option(help="host:port of an HTTP CONNECT proxy for the Temporal connection."),
    ] = None,
) -> None:
    """Exchange a registration token for this gateway's identity and write its config file."""
    from domain.sealing import SealingKeyPair
    from workers.gateway_api import RegistrationError, register_gateway

    path = (config or default_config_path()).expanduser()
    keys = _existing_keys(path) or SealingKeyPair.generate()
    try:
        identity = asyncio.run(register_gateway(api_url, token, keys=keys, http_proxy=http_proxy))
    except RegistrationError as error:
        typer.echo(f"registration failed: {error}", err=True)
        raise typer.Exit(1) from None
    # Keep the API URL that just worked from this network, not the one the API believes it
    # has: behind NAT or a proxy the two differ, and heartbeats must reach it from here.
    gateway_config = GatewayConfig(
        **identity.model_dump(exclude={"api_url"}),
        api_url=api_url,
        http_proxy=http_proxy,
        temporal_proxy=temporal_proxy,
        sealing_private_key=keys.private_key,
    )
    write_config(path, gateway_config)
    typer.echo(
        f"registered gateway {identity.name} ({identity.gateway_id}), queue "
        f"{identity.task_queue}; config written to {path}"
    )


def _existing_keys(path: Path) -> SealingKeyPair | None:
    """The key pair of a config registered here before: re-registering on the same host
    (after `gateway reissue-token`) keeps what is sealed to it openable."""
    try:
        return load_config(path).sealing_keys()
    except (FileNotFoundError, ValueError):
        return None


def run_command(
    config: ConfigOption = None,
    temporal_proxy: Annotated[
        str | None,
        typer.Option(help="host:port of an HTTP CONNECT proxy (overrides the config file)."),
    ] = None,
    replica_id: Annotated[
        str | None, typer.Option(help="Name of this replica in heartbeats and pollers.")
    ] = None,
) -> None:
    """Run a gateway replica: poll its own queue until Ctrl-C or SIGTERM."""
    from workers.gateway import run_gateway_from_config

    configure_logging()
    path = (config or default_config_path()).expanduser()
    try:
        load_config(path)
    except FileNotFoundError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    from runtime.metrics import install_temporal_metrics
    from runtime.process import run_service
    from runtime.settings import get_settings

    install_temporal_metrics(get_settings().metrics_address())
    run_service(run_gateway_from_config(path, temporal_proxy=temporal_proxy, replica_id=replica_id))
