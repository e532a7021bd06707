"""The `metalgate` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from cli import (
    accounts,
    agent,
    audit,
    clusters,
    demo,
    doctor,
    emulator,
    frontdoor,
    gateway_lifecycle,
    gateway_node,
    gateways,
    keys,
    login,
    projects,
    server,
    up,
    workers,
)

app = typer.Typer(
    name="metalgate",
    help="Kubernetes clusters on MAAS bare metal, driven by Temporal through private gateways.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
gateway_app = typer.Typer(
    help="Private cloud gateways: manage them, or run one.", no_args_is_help=True
)
worker_app = typer.Typer(help="Run a control-plane or system-gateway worker.", no_args_is_help=True)
server_app = typer.Typer(help="Run a control-plane server.", no_args_is_help=True)
agent_app = typer.Typer(help="The cluster agent and its runtimes.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(worker_app, name="worker")
app.add_typer(server_app, name="server")
app.add_typer(agent_app, name="agent")

up.register(app)
emulator.register(app)
demo.register(app)
doctor.register(app)
login.register(app)
projects.register(app)
keys.register(app)
audit.register(app)
accounts.register(app)
clusters.register(app)
gateways.register(gateway_app)
gateway_node.register(gateway_app)
gateway_lifecycle.register(gateway_app)
workers.register(worker_app)
server.register(server_app)
frontdoor.register(server_app)
agent.register(agent_app)
