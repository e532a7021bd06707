"""Spec file mistakes are explained: the nearest known field, the file and line of bad YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from cli.clusters import load_spec
from cli.output import OutputFormat

SPEC = """\
name: demo
kubernetes_version: v1.30.4
control_plane:
  name: control-plane
  count: 1
  constraints:
    min_cpus: 2
"""


def rejected(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises((typer.Exit, SystemExit)):
        load_spec(path, OutputFormat.TABLE)
    captured = capsys.readouterr()
    return captured.err + captured.out


def test_unknown_field_suggests_the_nearest_known_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(SPEC)
    said = " ".join(rejected(path, capsys).split())
    assert "control_plane.constraints.min_cpus" in said
    assert "did you mean `min_cpu`?" in said


def test_yaml_error_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: demo\nworker_pools: [\n  - name: w\n")
    said = "".join(rejected(path, capsys).split())  # rich may wrap the long path
    assert "<unicodestring>" not in said
    assert f'"{path}",line' in said
