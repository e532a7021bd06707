"""The CLI imports only what a command needs: `cluster list` never loads the API's server."""

from __future__ import annotations

import subprocess
import sys

SERVER_ONLY = ("fastapi", "uvicorn", "sqlalchemy")


def imported(*argv: str) -> set[str]:
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", *argv],
        capture_output=True, text=True, check=True, timeout=60,
    ).stderr  # fmt: skip
    return {line.rsplit("|", 1)[-1].strip() for line in trace.splitlines() if "|" in line}


def test_cluster_list_imports_no_server_code() -> None:
    modules = imported("cluster", "list", "--help")
    assert "cli.clusters" in modules  # the trace is real
    assert not [m for m in SERVER_ONLY if m in modules]
