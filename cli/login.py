"""`metalgate login`, and how every user command finds the API and its key.

Precedence: METALGATE_API_URL / METALGATE_API_KEY (environment or .env) override the
credentials file that `metalgate login` writes, which overrides the built-in default URL.
The file lives in ~/.config/metalgate/credentials, or METALGATE_CONFIG_DIR (tests use it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, SecretStr

from cli.api_client import ApiClient
from cli.exit_codes import ExitCode
from cli.output import OutputFormat, OutputOption, emit_message, fail, handles_api_errors
from runtime.settings import Settings

CONFIG_DIR_ENV = "METALGATE_CONFIG_DIR"


class Credentials(BaseModel):
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


def load_credentials() -> Credentials:
    """The effective API URL and key for this invocation."""
    settings = Settings()
    saved: Credentials | None = None
    path = credentials_path()
    if path.exists():
        saved = Credentials.model_validate_json(path.read_text())
    # Only values set explicitly (environment or .env) beat the file; defaults do not.
    explicit = settings.model_fields_set
    url = settings.api_url
    if "api_url" not in explicit and saved is not None:
        url = saved.api_url
    key = settings.api_key
    if "api_key" not in explicit and saved is not None:
        key = saved.api_key
    return Credentials(api_url=url, api_key=key)


def client(fmt: OutputFormat = OutputFormat.TABLE) -> ApiClient:
    """An API client for a user command; exits with AUTH when no key is configured."""
    creds = load_credentials()
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
