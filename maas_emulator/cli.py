"""The `maas-emulator` command, shared by `metalgate maas-emulator` and `python -m maas_emulator`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from maas_emulator.config import EmulatorConfig, FaultConfig


def maas_emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5240,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="MAAS_EMULATOR_API_KEY",
            help="Admin API key; generated and printed when absent. Prefer the environment "
            "variable: command lines are visible to every user in ps.",
        ),
    ] = None,
    machines: Annotated[int, typer.Option(help="Machines generated on first start.")] = 10,
    deploy_seconds: Annotated[float, typer.Option(help="Deploying duration; 0 = instant.")] = 5.0,
    release_seconds: Annotated[float, typer.Option(help="Releasing duration; 0 = instant.")] = 2.0,
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite inventory lives.")] = Path(
        ".data/maas-emulator"
    ),
    inventory: Annotated[
        Path | None, typer.Option(help="YAML/JSON inventory instead of generated machines.")
    ] = None,
    deploy_failure_rate: Annotated[float, typer.Option(help="Share of deploys that fail.")] = 0.0,
    fail_machines: Annotated[
        str, typer.Option(help="Comma-separated system ids/hostnames that always fail to deploy.")
    ] = "",
    http_503_rate: Annotated[float, typer.Option(help="Share of API calls answered 503.")] = 0.0,
    latency_ms: Annotated[int, typer.Option(help="Latency added to every API call.")] = 0,
    lost_answer_rate: Annotated[
        float, typer.Option(help="Share of POSTs applied whose answer is lost (503 or cut).")
    ] = 0.0,
    boot_hook_url: Annotated[
        str | None, typer.Option(help="URL that receives deployed/released events as JSON.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for generated machines and faults.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run the MAAS emulator: MAAS 2.0 REST API at http://HOST:PORT/MAAS/."""
    # Imported here so that `metalgate` commands other than this one skip aiohttp.
    from maas_emulator.server import admin_api_key, build_app, run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    config = EmulatorConfig(
        host=host,
        port=port,
        api_key=api_key,
        machines=machines,
        deploy_seconds=deploy_seconds,
        release_seconds=release_seconds,
        data_dir=data_dir,
        inventory=inventory,
        faults=FaultConfig(
            deploy_failure_rate=deploy_failure_rate,
            fail_machines=[name for name in fail_machines.split(",") if name],
            http_503_rate=http_503_rate,
            latency_ms=latency_ms,
            lost_answer_rate=lost_answer_rate,
        ),
        boot_hook_url=boot_hook_url,
        seed=seed,
    )
    app = build_app(config)
    if api_key is None:
        typer.echo(f"API key: {admin_api_key(app)}")
    typer.echo(f"MAAS emulator on http://{host}:{port}/MAAS/")
    run(config, app)


def main() -> None:
    typer.run(maas_emulator)
