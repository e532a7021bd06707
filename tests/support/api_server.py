"""Run the real API under uvicorn on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from api.app import create_app
from runtime.settings import Settings
from tests.support.ports import free_port

ADMIN_KEY = "mgk_test-operator-key-0123456789abcdef"


def api_settings(
    data_dir: Path, temporal_address: str, codec_keys: list[str], **overrides: Any
) -> Settings:
    port = free_port()
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "temporal_address": temporal_address,
        "codec_keys": [SecretStr(k) for k in codec_keys],
        "bootstrap_admin_key": SecretStr(ADMIN_KEY),
        "api_port": port,
        "api_url": f"http://127.0.0.1:{port}",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_api(
    settings: Settings, *, temporal: Client | None = None, **app_kwargs: Any
) -> AsyncIterator[str]:
    """Serve the app until the block ends; yields its base URL."""
    app = create_app(settings, temporal=temporal, **app_kwargs)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.api_port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the API server stopped during startup")
            await asyncio.sleep(0.02)
        yield settings.api_url
    finally:
        server.should_exit = True
        await task
