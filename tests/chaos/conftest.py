"""Chaos summaries reach the terminal even when pytest captures output (as `make chaos` runs)."""

from __future__ import annotations

import pytest

SUMMARIES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for table in SUMMARIES:
        for line in table.splitlines():
            terminalreporter.write_line(line)
