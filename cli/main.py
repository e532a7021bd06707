"""The `metalgate` command: one Typer app, one sub-module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="metalgate",
    help="Kubernetes clusters on MAAS bare metal, driven by Temporal through private gateways.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    # Imported here so each command group stays in its own module.
    from cli import emulator, up

    up.register(app)
    emulator.register(app)


_register()
