"""The `metalgate` command: one Typer app, one module per command group, imported on demand.

A command imports only its own module: `cluster list` must not pay for the agent, the
supervisor or the gateway (issue 17 wants it under 0.5 s; `python -m bench.cli_latency`).
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_group

# Top-level name -> the cli modules whose `register` fills it, and for a group defined here
# (rather than by its module) that group's help.
COMMANDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "up": (("up",), None),
    "demo": (("demo",), None),
    "doctor": (("doctor",), None),
    "login": (("login",), None),
    "project": (("projects",), None),
    "keys": (("keys",), None),
    "account": (("accounts",), None),
    "cluster": (("clusters",), None),
    "gateway": (
        ("gateways", "gateway_node", "gateway_lifecycle"),
        "Private cloud gateways: manage them, or run one.",
    ),
    "audit": (("audit",), None),
    "maas-emulator": (("emulator",), None),
    "worker": (("workers",), "Run a control-plane or system-gateway worker."),
    "server": (("server", "frontdoor"), "Run a control-plane server."),
    "agent": (("agent",), "The cluster agent and its runtimes."),
}


def load_command(name: str) -> Any:
    """Import the modules of one top-level command and build its (vendored) Click command."""
    modules, group_help = COMMANDS[name]
    holder = typer.Typer()
    target = holder
    if group_help is not None:
        target = typer.Typer(help=group_help, no_args_is_help=True)
        holder.add_typer(target, name=name)
    for module in modules:
        importlib.import_module(f"cli.{module}").register(target)
    return get_group(holder).commands[name]


class _LazyCommands(MutableMapping[str, Any]):
    """The root's commands: every name is listed, a command is built when first looked up."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = load_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class LazyGroup(TyperGroup):
    """TyperGroup reads `self.commands` for lookup, listing and "did you mean": all lazy here."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands()


class _Program(typer.Typer):
    """The app as a program (`metalgate`, `python -m cli`); tests invoke it through Click."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        finally:
            # CPython's exit collects garbage over every object the imports made, a third of
            # a short command's time here; the process is ending, so leave them to the OS.
            gc.freeze()


app = _Program(
    name="metalgate",
    cls=LazyGroup,
    help="Kubernetes clusters on MAAS bare metal, driven by Temporal through private gateways.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    # A callback makes Typer build a group although no command is registered up front.
    pass
