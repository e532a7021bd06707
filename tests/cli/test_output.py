"""Tables on an 80-column terminal: other columns wrap, ids are never cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import cli.output
from cli.output import OutputFormat, emit_list


def test_ids_are_whole_in_a_narrow_table(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli.output, "console", Console(file=out, width=80, no_color=True))
    rows = [
        {
            "id": f"cl-0123456789abcdef{n}",
            "system_id": f"machine-{n}-abcdefgh",
            "name": "a-cluster-with-a-long-name",
            "message": "waiting for the gateway to poll its queue, which it has not done " * 2,
        }
        for n in range(3)
    ]
    columns = [("ID", "id"), ("System ID", "system_id"), ("Name", "name"), ("Message", "message")]
    emit_list(rows, OutputFormat.TABLE, columns)
    text = out.getvalue()
    for row in rows:
        assert row["id"] in text, text
        assert row["system_id"] in text, text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_clusters_pools_show_their_spread_over_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.clusters import POOL_COLUMNS

    out = io.StringIO()
    monkeypatch.setattr(cli.output, "console", Console(file=out, width=100, no_color=True))
    pools = [
        {
            "name": "control-plane",
            "role": "control-plane",
            "count": 3,
            "machines": 3,
            "zones": ["az1", "az2", "az3"],
            "by_zone": [{"zone": "az1", "machines": 2}, {"zone": "az2", "machines": 1}],
        },
        {"name": "workers", "role": "worker", "count": 2, "machines": 2, "zones": [],
         "by_zone": [{"zone": "default", "machines": 2}]},
    ]  # fmt: skip
    emit_list(pools, OutputFormat.TABLE, POOL_COLUMNS)
    text = out.getvalue()
    assert "az1, az2, az3" in text and "az1: 2, az2: 1" in text
    assert "3/3" in text and "any" in text and "default: 2" in text
