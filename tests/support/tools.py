"""External tools some tests need: skip when missing, fail instead when CI requires them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_tool(name: str) -> Path:
    """The tool's path; skips the test when it is missing (fails if METALGATE_REQUIRE_TOOLS=1)."""
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    message = f"`{name}` is not installed (Debian: apt-get install {name})"
    if os.environ.get("METALGATE_REQUIRE_TOOLS") == "1":
        pytest.fail(message + "; METALGATE_REQUIRE_TOOLS=1 makes it mandatory")
    pytest.skip(message)
