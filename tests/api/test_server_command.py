"""`metalgate server api` serves the app under uvicorn, with no Temporal server running."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.temporal import assert_eventually

REPO = Path(__file__).parents[2]


async def test_server_api_command_serves_until_stopped(tmp_path: Path) -> None:
    port, nothing = free_port(), free_port()
    env = {
        **os.environ,
        "METALGATE_DATA_DIR": str(tmp_path),
        "METALGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{nothing}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "server",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=env,
        cwd=REPO,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> dict[str, str | None]:
                try:
                    answer = await http.get("/readyz")
                except httpx.TransportError as exc:
                    raise AssertionError("not listening yet") from exc
                body: dict[str, str | None] = answer.json()
                return body

            body = await assert_eventually(ready, within=60)
            assert body == {
                "status": "ready",
                "store": "ok",
                "temporal": "unreachable",
                "control_plane_pollers": None,
            }
        # The generated operator key is kept for `metalgate up` to print.
        assert (tmp_path / "secrets" / "admin-api-key").read_text().startswith("mgk_")
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
