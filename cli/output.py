"""How user commands print: rich tables for people, `-o json` for scripts, and errors as exit codes.

JSON output goes to stdout unstyled, one document per command. Errors always go to stderr
(as `{"error": {"status": ..., "detail": ...}}` under `-o json`), and the process exits with a
code from `cli.exit_codes`, so a script never has to parse a message.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.api_client import ApiError, ApiUnreachableError
from cli.exit_codes import ExitCode, for_status

P = ParamSpec("P")
R = TypeVar("R")


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table for people, json for scripts.", show_default=True),
]

console = Console()
err_console = Console(stderr=True)

# A column: header and either a dotted key into the object or a function of it.
Column = tuple[str, str | Callable[[dict[str, Any]], Any]]


def print_json(data: Any) -> None:
    """Unstyled JSON on stdout: rich would wrap long lines and break parsers."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def emit_list(
    items: Sequence[dict[str, Any]], fmt: OutputFormat, columns: Sequence[Column]
) -> None:
    if fmt is OutputFormat.JSON:
        print_json(list(items))
        return
    if not items:
        err_console.print("(none)", style="dim")
        return
    table = Table(show_edge=False, header_style="bold")
    rows = [[_cell(_value(item, key)) for _, key in columns] for item in items]
    for i, (header, _) in enumerate(columns):
        if is_id_column(header):
            # An id is copied into the next command: other columns wrap instead of it being cut.
            width = max(len(header), *(len(row[i]) for row in rows))
            table.add_column(header, no_wrap=True, min_width=width)
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def is_id_column(header: str) -> bool:
    return header == "ID" or header.endswith(" ID")


def emit_object(item: dict[str, Any], fmt: OutputFormat, fields: Sequence[Column]) -> None:
    if fmt is OutputFormat.JSON:
        print_json(item)
        return
    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, key in fields:
        table.add_row(label, Text(_cell(_value(item, key))))
    console.print(table)


def emit_message(message: str, fmt: OutputFormat, data: dict[str, Any] | None = None) -> None:
    """A confirmation for people; under `-o json`, the data (or `{}`) instead."""
    if fmt is OutputFormat.JSON:
        print_json(data or {})
    else:
        console.print(message, markup=False, highlight=False)


def fail(
    code: ExitCode,
    message: str,
    fmt: OutputFormat,
    *,
    status: int = 0,
    errors: Sequence[dict[str, Any]] = (),
) -> NoReturn:
    """Report an error on stderr and exit with `code`."""
    if fmt is OutputFormat.JSON:
        error = {
            "status": status,
            "detail": message,
            "errors": list(errors),
            "exit_code": int(code),
        }
        typer.echo(json.dumps({"error": error}), err=True)
    else:
        # Markup off: messages quote patterns like [a-z0-9] that rich would eat as tags.
        err_console.print(Text.assemble(("error: ", "red"), message))
    raise typer.Exit(int(code))


@contextmanager
def api_errors(fmt: OutputFormat) -> Iterator[None]:
    """Turn API errors raised inside the block into a message and the documented exit code."""
    try:
        yield
    except ApiUnreachableError as exc:
        fail(ExitCode.UNREACHABLE, exc.message, fmt)
    except ApiError as exc:
        message = exc.message
        if exc.status == 401:
            message += " (run `metalgate login` or set METALGATE_API_KEY)"
        fail(for_status(exc.status), message, fmt, status=exc.status, errors=exc.errors)


def handles_api_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command whose `output` parameter picks the error format."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # `kubeconfig -o` also takes a file name, so compare values rather than types.
        fmt = OutputFormat.JSON if kwargs.get("output") == OutputFormat.JSON else OutputFormat.TABLE
        with api_errors(fmt):
            return func(*args, **kwargs)

    return wrapper


def _value(item: dict[str, Any], key: str | Callable[[dict[str, Any]], Any]) -> Any:
    if callable(key):
        return key(item)
    value: Any = item
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, str) and "T" in value and value[:4].isdigit():
        return _short_time(value)
    return str(value)


def _short_time(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    # The API answers UTC; people read their own clock.
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
