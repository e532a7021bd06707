"""A live API for CLI tests: the real app under uvicorn, a temp SQLite store, the dev server."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from api.app import create_app
from cli.main import app
from runtime.settings import Settings
from tests.support.ports import free_port


@dataclass(frozen=True)
class LiveApi:
    url: str
    admin_key: str
    settings: Settings


@pytest.fixture(scope="session")
def live_api(
    env: WorkflowEnvironment, codec_keys: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """The API in a thread with its own event loop: CLI tests block, so they cannot share one."""
    port = free_port()
    admin_key = f"mgk_{secrets.token_urlsafe(24)}"
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api-data"),
        temporal_address=env.client.service_client.config.target_host,
        codec_keys=codec_keys,
        bootstrap_admin_key=admin_key,
        api_url=f"http://127.0.0.1:{port}",
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cli-test-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start; see the log above")
        time.sleep(0.05)
    try:
        yield LiveApi(url=settings.api_url, admin_key=admin_key, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# Environment overrides for one run; None removes a variable.
Env = dict[str, str | None]


class Cli:
    """Runs `metalgate ...` in process against one API with one key."""

    def __init__(self, url: str, key: str | None, config_dir: Path) -> None:
        self.url = url
        self.key = key
        self.config_dir = config_dir
        self.runner = CliRunner()

    def env(self, overrides: Env | None = None) -> Env:
        # Wide and plain so tables neither wrap nor carry colour codes.
        base: Env = {
            "METALGATE_CONFIG_DIR": str(self.config_dir),
            "METALGATE_API_URL": self.url,
            "METALGATE_API_KEY": self.key,
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
        return {**base, **(overrides or {})}

    def run(self, *args: str, code: int = 0, env: Env | None = None) -> Result:
        result = self.runner.invoke(app, list(args), env=self.env(env))
        assert result.exit_code == code, (
            f"metalgate {' '.join(args)} exited {result.exit_code}, expected {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
        )
        return result

    def json(self, *args: str, env: Env | None = None) -> Any:
        return json.loads(self.run(*args, "-o", "json", env=env).stdout)

    def error(self, *args: str, code: int, env: Env | None = None) -> dict[str, Any]:
        """Run a command expected to fail; its `-o json` error document from stderr."""
        result = self.run(*args, "-o", "json", code=code, env=env)
        error: dict[str, Any] = json.loads(result.stderr)["error"]
        assert error["exit_code"] == code
        return error

    def as_key(self, key: str | None) -> Cli:
        return Cli(self.url, key, self.config_dir)


@pytest.fixture
def admin_cli(live_api: LiveApi, tmp_path: Path) -> Cli:
    """The CLI with the operator key of the default project."""
    return Cli(live_api.url, live_api.admin_key, tmp_path / "config")


@pytest.fixture
def project_cli(admin_cli: Cli) -> Cli:
    """The CLI with an admin key of a fresh project, so tests do not see each other's objects."""
    project = admin_cli.json("project", "create", f"p-{secrets.token_hex(4)}")
    key = admin_cli.json("project", "key-create", project["id"], "--role", "admin")
    return admin_cli.as_key(key["key"])
