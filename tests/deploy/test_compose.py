"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every metalgate service must run a command the image's `metalgate` provides, every
METALGATE_* variable it sets must be a setting, and the image must carry every package.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
METALGATE_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image") == "metalgate:latest"
}


def metalgate_invocations(service: dict[str, Any]) -> list[list[str]]:
    """The metalgate argv of a service: its command, or each `metalgate ...` in a shell line."""
    if service.get("entrypoint", ["metalgate"])[0] == "metalgate":
        return [[str(part) for part in service["command"]]]
    script = " ".join(service["command"])
    return [
        shlex.split(chunk.split(";")[0].split("||")[0])
        for chunk in re.findall(r"metalgate ([^;|]+)", script)
    ]


def test_the_compose_file_runs_each_metalgate_process() -> None:
    assert {"api", "control-plane-worker", "maas", "pcg", "agent-runtime"} <= set(
        METALGATE_SERVICES
    )


@pytest.mark.parametrize("name", sorted(METALGATE_SERVICES))
def test_each_service_runs_a_command_the_image_provides(name: str) -> None:
    for argv in metalgate_invocations(METALGATE_SERVICES[name]):
        first_option = next((i for i, w in enumerate(argv) if w.startswith("-")), len(argv))
        words = argv[:first_option]
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"{name}: `metalgate {' '.join(argv)}`: {result.output}"
        options = {w.split("=")[0] for w in argv if w.startswith("--")}
        for option in options:
            assert option in result.output, f"{name}: `metalgate {words}` has no {option}"


@pytest.mark.parametrize("name", sorted(METALGATE_SERVICES))
def test_every_variable_a_service_sets_is_a_setting(name: str) -> None:
    service = METALGATE_SERVICES[name]
    script = " ".join(str(part) for part in service.get("command", []))
    fields = {f"METALGATE_{field.upper()}" for field in Settings.model_fields}
    for variable in service.get("environment", {}):
        if variable.startswith("METALGATE_") and f"$${variable}" not in script:
            assert variable in fields, f"{name} sets {variable}, which no setting reads"


def test_the_image_carries_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, flags=re.MULTILINE))
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"


def test_the_private_network_cannot_reach_the_control_plane() -> None:
    assert COMPOSE["networks"]["private"].get("internal") is True
    services = COMPOSE["services"]
    control_side = {"postgres", "api", "control-plane-worker", "temporal", "temporal-ui"}
    for name in control_side:
        assert "private" not in services[name]["networks"], f"{name} must not join private"
    assert services["maas"]["networks"] == ["private"]
