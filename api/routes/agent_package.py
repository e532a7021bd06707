"""`GET /v1/agent/package/metalgate_agent-<version>-py3-none-any.whl`: the agent a node installs.

A node's user data runs `pip install <api>/v1/agent/package/<wheel>` so its agent is exactly
the control plane's version, fetched over the one path every agent already reaches. The wheel
is the agent-only distribution `metalgate-agent` (`bootstrap/agent_distribution.py`): stock Ubuntu's
python3 and none of the control plane's dependencies. The route is unauthenticated on purpose:
the wheel is open-source code with no secret in it, and a node has no credential before it is
installed (its agent token is in its own bootstrap file).

Where the wheel comes from, first match wins:
1. `METALGATE_AGENT_PACKAGE_DIR` (the Docker image builds it there at image build time);
2. `<data dir>/agent-package/`, a cache of 3.;
3. built once from the installed source tree (an editable or source checkout) into that cache.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from bootstrap import agent_distribution
from runtime.settings import Settings

log = logging.getLogger(__name__)

# The control plane, whose source tree and version the agent wheel is built from.
DISTRIBUTION = "metalgate"
PACKAGE_PATH = "/v1/agent/package/{filename}"
WHEEL_MEDIA_TYPE = "application/octet-stream"

router = APIRouter(tags=["agent"])
_build_lock = asyncio.Lock()


def wheel_name(version: str | None = None) -> str:
    return agent_distribution.wheel_name(version or importlib.metadata.version(DISTRIBUTION))


@router.get(
    PACKAGE_PATH,
    response_class=FileResponse,
    responses={404: {"description": "another version than this control plane's"}},
)
async def agent_package(filename: str, request: Request) -> FileResponse:
    """This control plane's own agent wheel; any other version is a 404 naming the one served."""
    expected = wheel_name()
    if filename != expected:
        raise HTTPException(
            404,
            f"this control plane serves only {expected}: a node's agent must match the control "
            "plane's version, so render the user data again rather than pinning another one",
        )
    settings: Settings = request.app.state.settings
    path = await find_or_build_wheel(settings, expected)
    return FileResponse(path, media_type=WHEEL_MEDIA_TYPE, filename=expected)


async def find_or_build_wheel(settings: Settings, name: str) -> Path:
    if settings.agent_package_dir is not None:
        prebuilt = settings.agent_package_dir / name
        if await asyncio.to_thread(prebuilt.is_file):
            return prebuilt
    cache = settings.resolved_data_dir() / "agent-package"
    cached = cache / name
    async with _build_lock:
        if await asyncio.to_thread(cached.is_file):
            return cached
        source = await asyncio.to_thread(source_tree)
        if source is None:
            raise HTTPException(
                503,
                f"no agent package {name}: this installation has no source tree to build it "
                "from; build it with `python -m bootstrap.agent_distribution <source> <dir>` and set "
                "METALGATE_AGENT_PACKAGE_DIR to its directory",
            )
        await _build(source, cache, name)
    return cached


def source_tree() -> Path | None:
    """The checkout this code runs from (an editable install or a clone), else None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None  # installed into site-packages: only a prebuilt wheel can be served
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    return root if project.get("name") == DISTRIBUTION else None


async def _build(source: Path, cache: Path, name: str) -> None:
    """Build in a scratch directory, so the source tree gets no build/ folder."""
    with tempfile.TemporaryDirectory(prefix="metalgate-agent-wheel-") as scratch:
        root = Path(scratch)
        try:
            built = await asyncio.to_thread(agent_distribution.build, source, root, root / "out")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
            output = getattr(err, "stdout", None) or b""
            log.error(
                "building %s failed: %s %s", name, err, output.decode(errors="replace")[-2000:]
            )
            detail = f"building the agent package {name} failed; see the API log"
            raise HTTPException(503, detail) from err
        if built.name != name or not await asyncio.to_thread(built.is_file):
            raise HTTPException(503, f"building the agent package {name} wrote {built.name}")
        await asyncio.to_thread(_publish, built, cache)
        log.info("built the agent package %s from %s", name, source)


def _publish(built: Path, cache: Path) -> None:
    """Into the cache under its final name in one rename: a reader never sees half a wheel."""
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{built.name}.partial"
    shutil.copyfile(built, partial)
    partial.replace(cache / built.name)
