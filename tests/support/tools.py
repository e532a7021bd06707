"""External tools some tests need (cloud-init, openssl): skip without them, unless CI says fail."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_TOOLS = "METALGATE_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """The tool's path; a skip naming it when missing, or a failure when METALGATE_REQUIRE_TOOLS=1."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"`{name}` is not installed (on Debian/Ubuntu: apt-get install -y {name})"
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{message}, and {REQUIRE_TOOLS}=1 requires it")
    pytest.skip(message)
