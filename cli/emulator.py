"""`metalgate maas-emulator`: the MAAS emulator, a stand-in for a real MAAS."""

from __future__ import annotations

import typer

from maas_emulator.cli import maas_emulator


def register(app: typer.Typer) -> None:
    app.command("maas-emulator")(maas_emulator)
