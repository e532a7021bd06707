"""The `metalgate` command of the agent-only distribution a node installs: `agent run` only."""

from __future__ import annotations

import typer

from cli.agent_run import run

app = typer.Typer(
    name="metalgate",
    help="The metalgate cluster agent of this node.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
agent_app = typer.Typer(help="The cluster agent.", no_args_is_help=True)
agent_app.command("run")(run)
app.add_typer(agent_app, name="agent")
