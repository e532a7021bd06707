"""`metalgate login`, and how every user command finds the API and its key.

Precedence: METALGATE_API_URL / METALGATE_API_KEY (environment or .env) override the
credentials file that `metalgate login` writes, which overrides the built-in default URL.
The file lives in ~/.config/metalgate/credentials, or METALGATE_CONFIG_DIR (tests use it).

The two variables are read the way `runtime.settings.Settings` reads them, without importing
it: pydantic-settings and the domain models behind `Settings` (temporalio among them) would
cost a user command most of its 0.5 s (tests/cli/test_credentials.py keeps the two in step).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from cli.api_client import ApiClient
from cli.exit_codes import ExitCode
from cli.output import OutputFormat, OutputOption, emit_message, fail, handles_api_errors

CONFIG_DIR_ENV = "METALGATE_CONFIG_DIR"
DEFAULT_API_URL = "http://127.0.0.1:8080"  # Settings.api_url's default
ENV_FILE = Path(".env")  # Settings' env_file, relative to the working directory


@dataclass(frozen=True)
class Credentials:
    # A dataclass, not a model: building a pydantic model class costs a command ~0.1 s.
    api_url: str
    api_key: SecretStr | None = None


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "metalgate"


def credentials_path() -> Path:
    return config_dir() / "credentials"


def save_credentials(creds: Credentials) -> Path:
    """Write the file with mode 0600 from the start: the key is never world-readable."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {"api_url": creds.api_url, "api_key": _plain(creds.api_key)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=2)
    os.chmod(path, 0o600)  # O_CREAT's mode does not change an existing file
    return path


def load_credentials(fmt: OutputFormat = OutputFormat.TABLE) -> Credentials:
    """The effective API URL and key for this invocation."""
    values: dict[str, Any] = {"api_url": DEFAULT_API_URL, "api_key": None}
    path = credentials_path()
    if path.exists():
        values.update(_saved(path, fmt))
    # Only values set explicitly (environment or .env) beat the file; defaults do not.
    values.update(_explicit_settings("api_url", "api_key"))
    key = values["api_key"]
    return Credentials(str(values["api_url"]), SecretStr(key) if key is not None else None)


def _saved(path: Path, fmt: OutputFormat) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
        if not isinstance(body, dict) or not isinstance(body.get("api_url"), str):
            raise ValueError("no api_url")
    except (OSError, ValueError) as exc:
        fail(
            ExitCode.USAGE,
            f"cannot read {path} ({exc}): run `metalgate login` again",
            fmt,
        )
    return {k: body[k] for k in ("api_url", "api_key") if k in body}


def _explicit_settings(*fields: str) -> dict[str, str]:
    """METALGATE_<FIELD> values set in the environment or in ./.env, the environment first.

    As pydantic-settings does: names are case-insensitive, .env's own values are parsed by
    python-dotenv, and an empty value counts as set.
    """
    wanted = {f"metalgate_{field}": field for field in fields}
    found: dict[str, str] = {}
    if ENV_FILE.is_file():
        from dotenv import dotenv_values  # only when there is a file to read

        for name, value in dotenv_values(ENV_FILE).items():
            if name.lower() in wanted and value is not None:
                found[wanted[name.lower()]] = value
    for name, value in os.environ.items():
        if name.lower() in wanted:
            found[wanted[name.lower()]] = value
    return found


def client(fmt: OutputFormat = OutputFormat.TABLE) -> ApiClient:
    """An API client for a user command; exits with AUTH when no key is configured."""
    creds = load_credentials(fmt)
    if creds.api_key is None:
        fail(
            ExitCode.AUTH,
            "no API key: run `metalgate login --api-url URL --api-key KEY` "
            "or set METALGATE_API_KEY",
            fmt,
        )
    return ApiClient(creds.api_url, _plain(creds.api_key))


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_api_errors
    def login(
        api_url: Annotated[str, typer.Option(help="Base URL of the metalgate API.")],
        api_key: Annotated[
            str,
            typer.Option(help="API key; prompted for when omitted.", prompt=True, hide_input=True),
        ],
        verify: Annotated[
            bool, typer.Option(help="Check the key against the API before saving it.")
        ] = True,
        output: OutputOption = OutputFormat.TABLE,
    ) -> None:
        """Save the API URL and key for later commands (mode 0600)."""
        if verify:
            with ApiClient(api_url, api_key) as api:
                # Any authenticated read proves the key; this one needs only the store.
                api.list_projects()
        path = save_credentials(Credentials(api_url=api_url, api_key=SecretStr(api_key)))
        emit_message(
            f"Logged in to {api_url}; credentials saved in {path}",
            output,
            {"api_url": api_url, "credentials": str(path)},
        )
