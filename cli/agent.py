"""`metalgate agent run|runtime`: one node's agent, or the boot-hook host of many."""

from __future__ import annotations

from pathlib import Path

import typer

from agent.runtime import AgentRuntime, serve
from cli.agent_run import run, run_until_signalled, timings_for
from runtime.logs import configure_logging
from runtime.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runtime")(runtime)


def runtime(
    host: str = typer.Option("127.0.0.1", help="Address the boot hook listens on"),
    port: int = typer.Option(8090, help="Port the boot hook listens on"),
    state_dir: Path = typer.Option(
        None, help="Each simulated agent's state, one directory per machine [<data dir>/agents]"
    ),
    init_seconds: float = typer.Option(2.0, help="Simulated kubeadm init duration"),
    heartbeat_interval: float = typer.Option(5.0, help="Seconds between heartbeats"),
) -> None:
    """Host one simulated agent per deployed emulator machine, driven by its boot hook."""
    configure_logging()
    timings = timings_for(init_seconds, heartbeat_interval)
    root = state_dir or Settings().resolved_data_dir() / "agents"
    run_until_signalled(serve(host, port, AgentRuntime(timings, state_root=root)))
