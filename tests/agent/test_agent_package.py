"""The API serves the agent wheel a node's user data installs: a valid wheel of this version."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.routes.agent_package import wheel_name
from runtime.settings import Settings

VERSION = importlib.metadata.version("metalgate")


async def get(settings: Settings, path: str) -> httpx.Response:
    # The route needs neither the store nor Temporal, so the app's lifespan is not run.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.get(path)


@pytest.fixture
async def settings(tmp_path: Path) -> AsyncIterator[Settings]:
    yield Settings(data_dir=tmp_path / "data", store_secret_key=None)


def check_wheel(content: bytes) -> zipfile.ZipFile:
    """What pip checks: the dist-info names this version and RECORD's hashes match."""
    wheel = zipfile.ZipFile(io.BytesIO(content))
    dist_info = f"metalgate-{VERSION}.dist-info"
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "Name: metalgate\n" in metadata and f"Version: {VERSION}\n" in metadata
    assert "Root-Is-Purelib: true" in wheel.read(f"{dist_info}/WHEEL").decode()
    record = wheel.read(f"{dist_info}/RECORD").decode().splitlines()
    listed = {}
    for line in record:
        name, digest, _size = line.rsplit(",", 2)
        listed[name] = digest
    assert set(listed) == set(wheel.namelist())
    for name, digest in listed.items():
        if digest:
            algorithm, _, expected = digest.partition("=")
            actual = base64.urlsafe_b64encode(hashlib.new(algorithm, wheel.read(name)).digest())
            assert actual.rstrip(b"=").decode() == expected, name
    return wheel


async def test_the_wheel_of_this_version_is_built_once_and_carries_the_agent(
    settings: Settings,
) -> None:
    name = wheel_name()
    assert name == f"metalgate-{VERSION}-py3-none-any.whl"
    answer = await get(settings, f"/v1/agent/package/{name}")
    assert answer.status_code == 200, answer.text
    wheel = check_wheel(answer.content)
    files = set(wheel.namelist())
    assert {"agent/agent.py", "agent/node_backend.py", "agent/backends/real/backend.py"} <= files
    assert "cli/main.py" in files  # the `metalgate agent run` entry point
    entry_points = wheel.read(f"metalgate-{VERSION}.dist-info/entry_points.txt").decode()
    assert "metalgate = cli.main:app" in entry_points

    cached = settings.resolved_data_dir() / "agent-package" / name
    assert cached.read_bytes() == answer.content
    again = await get(settings, f"/v1/agent/package/{name}")
    assert again.content == answer.content


async def test_another_version_is_a_404_naming_the_one_served(settings: Settings) -> None:
    answer = await get(settings, "/v1/agent/package/metalgate-0.0.1-py3-none-any.whl")
    assert answer.status_code == 404
    assert wheel_name() in answer.json()["detail"]


async def test_a_prebuilt_wheel_directory_is_served_as_it_is(
    settings: Settings, tmp_path: Path
) -> None:
    prebuilt = tmp_path / "wheels"
    prebuilt.mkdir()
    (prebuilt / wheel_name()).write_bytes(b"prebuilt by the image")
    answer = await get(
        settings.model_copy(update={"agent_package_dir": prebuilt}),
        f"/v1/agent/package/{wheel_name()}",
    )
    assert answer.status_code == 200 and answer.content == b"prebuilt by the image"
    assert not (settings.resolved_data_dir() / "agent-package").exists()
