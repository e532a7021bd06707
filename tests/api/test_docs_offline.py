"""/docs and /redoc work without internet: assets from the installed package, no CDN."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.support.tools import require_tool

CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "fonts.googleapis.com")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_their_assets_from_the_api(api: Api, page: str) -> None:
    html = (await api.http.get(page)).text
    assert not [host for host in CDN_HOSTS if host in html]
    assets = [part.split('"')[0] for part in html.split('="')[1:] if part.startswith("/docs-")]
    assert assets, html
    for asset in assets:
        assert (await api.http.get(asset)).status_code == 200, asset


@pytest.mark.timeout(120)
async def test_swagger_ui_renders_the_cluster_routes_in_chromium(api: Api, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    # No network besides loopback: a page that needs a CDN renders blank here.
    dumped = await asyncio.to_thread(
        subprocess.run,
        [str(chromium), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", f"{api.url}/docs"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    dom = dumped.stdout
    assert "swagger-ui" in dom, dumped.stderr[-2000:]
    assert "/v1/clusters/{cluster_id}/upgrade" in dom
    assert "opblock" in dom  # Swagger UI rendered operations, not just the empty page
