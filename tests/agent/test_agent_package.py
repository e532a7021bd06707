"""The API serves the agent-only wheel a node's user data installs, and it installs and runs."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.routes.agent_package import wheel_name
from runtime.settings import Settings

VERSION = importlib.metadata.version("metalgate")
DIST_INFO = f"metalgate_agent-{VERSION}.dist-info"
CONTROL_PLANE_ONLY = ("temporalio", "python-libmaas", "fastapi", "sqlalchemy", "asyncpg", "grpcio")


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
    dist_info = DIST_INFO
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "Name: metalgate-agent\n" in metadata and f"Version: {VERSION}\n" in metadata
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


async def test_the_agent_only_wheel_of_this_version_is_built_once(
    settings: Settings, tmp_path: Path
) -> None:
    name = wheel_name()
    assert name == f"metalgate_agent-{VERSION}-py3-none-any.whl"
    answer = await get(settings, f"/v1/agent/package/{name}")
    assert answer.status_code == 200, answer.text
    wheel = check_wheel(answer.content)
    metadata = wheel.read(f"{DIST_INFO}/METADATA").decode().split("\n\n")[0].splitlines()
    # Stock Ubuntu's python3 (noble's 3.12) must be allowed: no upper bound.
    assert "Requires-Python: >=3.11" in metadata
    requires = [
        line.split(": ", 1)[1].lower() for line in metadata if line.startswith("Requires-Dist")
    ]
    assert requires and not [r for r in requires if r.startswith(CONTROL_PLANE_ONLY)], requires
    files = set(wheel.namelist())
    assert {"agent/agent.py", "agent/backends/real/backend.py", "domain/agent_wire.py",
            "domain/gateway.py", "domain/text.py", "cli/agent_main.py"} <= files  # fmt: skip
    tops = {f.split("/")[0] for f in files}
    assert not tops & {"api", "workflows", "activities", "store", "maas_emulator", "bench"}
    assert "cli/main.py" not in files and "runtime/settings.py" not in files
    entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "metalgate = cli.agent_main:app" in entry_points

    cached = settings.resolved_data_dir() / "agent-package" / name
    assert cached.read_bytes() == answer.content
    again = await get(settings, f"/v1/agent/package/{name}")
    assert again.content == answer.content

    (tmp_path / name).write_bytes(answer.content)
    check_it_installs_and_runs_alone(tmp_path / name, tmp_path / "node-venv")


def check_it_installs_and_runs_alone(wheel: Path, venv: Path) -> None:
    """The real proof: installed alone into a venv of its own, the agent imports and runs.

    Third-party dependencies come from this venv's site-packages (on PYTHONPATH, whose .pth
    files are not read, so the editable control plane stays out of reach).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-index", "--no-deps", str(wheel)],
        check=True,
    )  # fmt: skip
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    own = subprocess.run(
        [python, "-c", "import agent.backends.real.backend, cli.agent_main as m; print(m.__file__)"],
        env=env, cwd=venv, capture_output=True, text=True,
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith(str(venv))
    control_plane = subprocess.run([python, "-c", "import api"], env=env, cwd=venv)
    assert control_plane.returncode != 0, "the control plane leaked into the node's venv"
    help_ = subprocess.run(
        [venv / "bin" / "metalgate", "agent", "run", "--help"],
        env=env, cwd=venv, capture_output=True, text=True,
    )  # fmt: skip
    assert help_.returncode == 0, help_.stderr
    assert "--bootstrap" in help_.stdout and "--heartbeat-interval" in help_.stdout


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
