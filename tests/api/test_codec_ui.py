"""The Web UI's token-bearing codec endpoint: right token decodes, anything else is 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.support.api_server import api_settings, running_api


@pytest.fixture
async def ui_codec_url(
    env: WorkflowEnvironment, codec_keys: list[str], tmp_path: Path
) -> AsyncIterator[str]:
    address = env.client.service_client.config.target_host
    settings = api_settings(tmp_path, address, codec_keys, ui_codec_token=SecretStr("ui-token-123"))
    async with running_api(settings) as url:
        yield f"{url}/codec/ui"


@pytest.mark.parametrize("token", ["wrong", "é-ü", "%F0%BD%9B%AE"])
async def test_other_tokens_are_not_found(ui_codec_url: str, token: str) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{ui_codec_url}/{token}/decode", json={"payloads": []})
    assert answer.status_code == 404


async def test_the_right_token_round_trips_a_payload(ui_codec_url: str) -> None:
    plain = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "ImhpIg=="}
    async with httpx.AsyncClient() as http:
        encoded = await http.post(f"{ui_codec_url}/ui-token-123/encode", json={"payloads": [plain]})
        assert encoded.status_code == 200
        [cipher] = encoded.json()["payloads"]
        assert cipher["data"] != plain["data"]
        decoded = await http.post(
            f"{ui_codec_url}/ui-token-123/decode", json={"payloads": [cipher]}
        )
    assert decoded.json()["payloads"] == [plain]
