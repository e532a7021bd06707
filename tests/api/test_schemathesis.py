"""Fuzz every operation of the OpenAPI spec against the live API: no input may cause a 5xx."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.worker import Worker

from tests.api.conftest import Api
from tests.support.api_server import ADMIN_KEY

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.timeout(300)
async def test_no_input_causes_a_server_error(api: Api, system_gateway: Worker) -> None:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{api.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "10",
        "--seed",
        "1",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",
        "--request-timeout",
        "30",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 240)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
