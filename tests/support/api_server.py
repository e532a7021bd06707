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
from domain.sealing import SealingKeyPair
from runtime import system_gateway_keys
from runtime.settings import Settings
from tests.support.ports import free_port

ADMIN_KEY = "mgk_test-operator-key-0123456789abcdef"
# The system gateway's key pair in every test API's data dir, as if it had started there,
# and the key test PCGs register with: stand-in gateways open what the API sealed with it.
# (That one gateway's key opens nothing sealed to another is tests/domain/test_sealing.py's
# and tests/secrets/test_no_plaintext_secrets.py's to show.)
STANDIN_GATEWAY_KEYS = SealingKeyPair.generate()


def install_system_gateway_keys(settings: Settings, keys: SealingKeyPair) -> None:
    """What the system gateway's first start leaves in the data dir."""
    folder = settings.resolved_data_dir() / system_gateway_keys.STATE_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / system_gateway_keys.PRIVATE_FILE).write_text(keys.private_key)
    (folder / system_gateway_keys.PRIVATE_FILE).chmod(0o600)
    assert system_gateway_keys.load_or_create(settings).public_key == keys.public_key


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
    settings = Settings(_env_file=None, **values)
    install_system_gateway_keys(settings, STANDIN_GATEWAY_KEYS)
    return settings


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
