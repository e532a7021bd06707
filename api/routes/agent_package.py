"""`GET /v1/agent/package/metalgate-<version>-py3-none-any.whl`: the agent a node installs.

A node's user data runs `pip install <api>/v1/agent/package/<wheel>` so its agent is exactly
the control plane's version, fetched over the one path every agent already reaches. The
route is unauthenticated on purpose: the wheel is this open-source package, with no secret in
it, and a node has no credential before it is installed (its agent token is in its own
bootstrap file).

Where the wheel comes from, first match wins:
1. `METALGATE_AGENT_PACKAGE_DIR` (the Docker image builds it there at image build time);
2. `<data dir>/agent-package/`, a cache of 3.;
3. built once from the installed source tree (an editable or source checkout) with
   `pip wheel --no-deps --no-build-isolation`, into that cache.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from runtime.settings import Settings

log = logging.getLogger(__name__)

DISTRIBUTION = "metalgate"
PACKAGE_PATH = "/v1/agent/package/{filename}"
WHEEL_MEDIA_TYPE = "application/octet-stream"
BUILD_SECONDS = 300.0

router = APIRouter(tags=["agent"])
_build_lock = asyncio.Lock()


def wheel_name(version: str | None = None) -> str:
    return f"{DISTRIBUTION}-{version or importlib.metadata.version(DISTRIBUTION)}-py3-none-any.whl"


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
                "from; build it with `pip wheel --no-deps <source>` and set "
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
    """Build from a copy of the packaging files, so the source tree gets no build/ folder."""
    with tempfile.TemporaryDirectory(prefix="metalgate-wheel-") as scratch:
        tree = Path(scratch) / "src"
        out = Path(scratch) / "out"
        await asyncio.to_thread(_copy_packaging_files, source, tree)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--quiet", "--wheel-dir", str(out), str(tree),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), BUILD_SECONDS)
        if process.returncode != 0 or not await asyncio.to_thread((out / name).is_file):
            log.error("building %s failed: %s", name, output.decode(errors="replace")[-2000:])
            raise HTTPException(503, f"building the agent package {name} failed; see the API log")
        await asyncio.to_thread(_publish, out / name, cache)
        log.info("built the agent package %s from %s", name, source)


def _publish(built: Path, cache: Path) -> None:
    """Into the cache under its final name in one rename: a reader never sees half a wheel."""
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{built.name}.partial"
    shutil.copyfile(built, partial)
    partial.replace(cache / built.name)


def _copy_packaging_files(source: Path, tree: Path) -> None:
    tree.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(source / name, tree / name)
    for child in source.iterdir():
        if child.is_dir() and (child / "__init__.py").is_file():
            shutil.copytree(child, tree / child.name, ignore=shutil.ignore_patterns("__pycache__"))
