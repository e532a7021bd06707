"""The CLI imports only what a command needs: `cluster list` loads neither the server, nor
Temporal's SDK, nor the agent (bench/cli_latency.py measures the time this buys)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.ports import free_port

# Top-level packages no user command that only talks to the API may import.
NOT_FOR_API_COMMANDS = (
    "fastapi", "uvicorn", "sqlalchemy", "temporalio", "pydantic_settings", "aiohttp",
    "kubernetes_asyncio", "agent", "psutil", "cryptography",
)  # fmt: skip


# sys.modules once the command has run (-X importtime misses importlib.import_module's imports).
RUN_AND_LIST = """
import runpy, sys
sys.argv = ["metalgate", *sys.argv[1:]]
try:
    runpy.run_module("cli", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("\\n".join(["MODULES", *sys.modules]))
"""


def imported(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    stderr = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    ).stderr  # fmt: skip
    return set(stderr.rsplit("MODULES\n", 1)[-1].splitlines())


def heavy(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(NOT_FOR_API_COMMANDS))


def test_cluster_list_imports_only_what_it_needs() -> None:
    # The whole command: credentials, the request (to a closed port) and the error it prints.
    env = {
        "METALGATE_API_URL": f"http://127.0.0.1:{free_port()}",
        "METALGATE_API_KEY": "mgk_import-cost",
    }
    modules = imported("cluster", "list", env=env)
    assert "cli.clusters" in modules and "httpx" in modules  # the trace is real
    assert heavy(modules) == []
    # Other command groups stay unloaded.
    assert not {"cli.up", "cli.agent", "cli.gateway_node", "cli.demo"} & modules


def test_help_of_cluster_list_imports_no_server_code() -> None:
    modules = imported("cluster", "list", "--help")
    assert "cli.clusters" in modules
    assert heavy(modules) == []
