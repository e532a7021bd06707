"""`metalgate up`: the whole stack on one machine, stopped cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer
from rich.console import Console

from embedded.supervisor import ChildFailedError, RegistrationFailedError, Supervisor, log_tail
from runtime.logs import configure_logging
from runtime.settings import get_settings

if TYPE_CHECKING:
    from embedded.stack import StackConfig

console = Console(soft_wrap=True)
DEFAULT_METRICS_PORT = 9460


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    data_dir: Path = typer.Option(None, help="Where every process keeps its data [.data]"),
    temporal_port: int = typer.Option(None, help="Temporal gRPC port [7233]"),
    ui_port: int = typer.Option(None, help="Temporal Web UI port [8233]"),
    api_port: int = typer.Option(None, help="metalgate API port [8080]"),
    maas_port: int = typer.Option(None, help="MAAS emulator port [5240]"),
    frontdoor_port: int = typer.Option(
        None, help="Gateway front door port [a free one, kept in the data dir]"
    ),
    agent_port: int = typer.Option(8090, help="Agent runtime (emulator boot hook) port"),
    metrics_port: int = typer.Option(
        DEFAULT_METRICS_PORT,
        help="First of the Prometheus metrics ports: API, control-plane worker, system "
        "gateway, then each PCG replica, one after the other; 0 serves none",
    ),
    machines: int = typer.Option(24, help="Machines the emulator seeds on first start"),
    deploy_seconds: float = typer.Option(3.0, help="Emulated MAAS deploy time"),
) -> None:
    """Start Temporal, the MAAS emulator, the API, workers, a PCG and the agent runtime."""
    # Imported here: the stack pulls in the Temporal SDK, which other commands do not need.
    from embedded.ports import PortTakenError
    from embedded.stack import StackConfig, StackPorts

    settings = get_settings()
    ports = StackPorts(
        temporal=temporal_port or settings.temporal_port,
        ui=ui_port or settings.ui_port,
        api=api_port or settings.api_port,
        maas=maas_port or settings.maas_port,
        agent_runtime=agent_port,
        frontdoor=frontdoor_port,
        metrics=metrics_port or None,
    )
    config = StackConfig(
        data_dir=data_dir or settings.data_dir,
        ports=ports,
        host=settings.bind_host,
        maas_machines=machines,
        deploy_seconds=deploy_seconds,
    )
    configure_logging()
    try:
        asyncio.run(_serve(config))
    except PortTakenError as exc:
        console.print(f"[red]metalgate up:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ChildFailedError as exc:
        console.print(f"[red]metalgate up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    except (httpx.HTTPError, RegistrationFailedError) as exc:
        # Everything it started is stopped already; a traceback would add nothing.
        console.print(f"[red]metalgate up failed:[/red] {exc} (logs in the data dir's logs/)")
        raise typer.Exit(1) from None


async def _serve(config: StackConfig) -> None:
    from embedded.stack import start_stack

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(f"starting metalgate in {config.data_dir.resolve()} ...")
    starting = asyncio.create_task(start_stack(config))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        # Ctrl-C while starting: start_stack stops what it started when cancelled.
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        console.print("stopped before it was up.")
        return
    stopped.cancel()
    stack = starting.result()
    try:
        info = stack.info
        console.print("[bold green]metalgate is up[/bold green]")
        console.print(f"  API docs        {info.api_url}/docs")
        console.print(f"  Temporal UI     {info.temporal_ui_url}")
        console.print(f"  Temporal gRPC   {info.temporal_address}")
        console.print(f"  MAAS emulator   {info.maas_url} (key in {info.maas_api_key_file})")
        console.print(
            f"  local PCG       {info.pcg_gateway_id} ({len(stack.pcg_replicas)} replica)"
        )
        for name, url in info.metrics.items():
            console.print(f"  metrics         {url}  ({name})")
        console.print(f"  logs            {config.data_dir.resolve() / 'logs'}")
        if stack.admin_key_was_new:
            console.print(
                f"  admin API key   {stack.admin_key}  (shown once; kept in the data dir)"
            )
        else:
            console.print(f"  admin API key   in {info.admin_api_key_file}")
        console.print(f"export METALGATE_API_URL={info.api_url}")
        console.print("Ctrl-C stops everything.")
        await _watch(stack.supervisor, stop)
    finally:
        console.print("stopping ...")
        await stack.stop()
        console.print("stopped.")


async def _watch(supervisor: Supervisor, stop: asyncio.Event) -> None:
    """Restart a child that dies on its own, until asked to stop."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        for name in supervisor.exited():
            if stop.is_set():
                break
            child = supervisor.children[name]
            console.print(
                f"[yellow]{name} exited; restarting[/yellow]\n{log_tail(child.log_path, 5)}"
            )
            with contextlib.suppress(ChildFailedError):
                await supervisor.start(child.spec)
