"""`metalgate doctor` on the stack `metalgate up` starts: healthy, then MAAS gone, then the
gateway gone, each failure named with its fix and exit code 1.

One stack serves every stage; its gateway heartbeats every few seconds (the API hands out its
own interval at registration), so each change shows within seconds, not half a minute.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cli.doctor import control_plane_check, version_check
from cli.exit_codes import ExitCode
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.cli.conftest import Cli
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(420)

# Offline after two missed beats: 6 s, kept above what a loaded 2-core machine can delay.
HEARTBEAT_SECONDS = 3


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    config = StackConfig(
        data_dir=tmp_path / "stack",
        ports=StackPorts(
            temporal=free_port(),
            ui=free_port(),
            api=free_port(),
            maas=free_port(),
            agent_runtime=free_port(),
        ),
        maas_machines=2,
        agent_runtime=False,  # no cluster is created: nothing would boot into it
        extra_env={"METALGATE_GATEWAY_HEARTBEAT_INTERVAL": str(HEARTBEAT_SECONDS)},
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


async def doctor(cli: Cli, code: int) -> dict[str, Any]:
    result = await asyncio.to_thread(cli.run, "doctor", "-o", "json", code=code)
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def failing(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in answer["checks"] if not c["ok"]}


async def doctor_until(
    cli: Cli, done: Callable[[dict[str, Any]], bool], seconds: float, what: str
) -> dict[str, Any]:
    """Run doctor until `done(answer)` (gateways report every few seconds)."""
    for _ in range(int(seconds)):
        result = await asyncio.to_thread(cli.runner.invoke, cli_app(), ["doctor", "-o", "json"],
                                         env=cli.env())  # fmt: skip
        answer: dict[str, Any] = json.loads(result.stdout)
        if done(answer):
            assert result.exit_code == (ExitCode.OK if answer["ok"] else ExitCode.FAILED)
            return answer
        await asyncio.sleep(1)
    raise AssertionError(f"doctor never reported {what}")


def check(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in answer["checks"] if c["name"] == name), {"ok": None, "detail": ""})


def cli_app() -> Any:
    from cli.main import app

    return app


async def test_doctor_names_each_failure_with_its_fix(stack: Stack, tmp_path: Path) -> None:
    cli = Cli(stack.info.api_url, stack.admin_key, tmp_path / "config")
    gateway = f"gateway {'local-pcg'} ({stack.info.pcg_gateway_id})"
    await asyncio.to_thread(
        cli.run, "account", "create", "--name", "emulator", "--maas-url", stack.info.maas_url,
        "--maas-api-key-file", stack.info.maas_api_key_file, "--gateway",
        str(stack.info.pcg_gateway_id), "-o", "json",
    )  # fmt: skip
    healthy = await doctor_until(
        cli,
        lambda a: a["ok"] and "reaches MAAS" in check(a, f"{gateway} MAAS")["detail"],
        90,
        "everything healthy, MAAS reached",
    )
    names = {c["name"] for c in healthy["checks"]}
    assert {"api", "temporal", "control-plane worker", f"{gateway} polling", "versions"} <= names
    assert "polling" in check(healthy, "control-plane worker")["detail"]

    await stack.supervisor.stop("maas-emulator")
    answer = await doctor_until(
        cli, lambda a: check(a, f"{gateway} MAAS")["ok"] is False, 90, "MAAS unreachable"
    )
    maas = failing(answer)[f"{gateway} MAAS"]
    assert stack.info.maas_url.rstrip("/") in maas["detail"]
    assert "curl" in maas["fix"]

    await stack.supervisor.stop("pcg-1")
    answer = await doctor_until(
        cli, lambda a: check(a, f"{gateway} polling")["ok"] is False, 90, "the gateway offline"
    )
    assert "metalgate gateway run" in failing(answer)[f"{gateway} polling"]["fix"]

    for name in list(stack.supervisor.children):
        await stack.supervisor.stop(name)
    dead = await doctor(cli, code=ExitCode.FAILED)
    [api] = dead["checks"]
    assert api["name"] == "api" and "metalgate up" in api["fix"]


async def test_the_table_says_what_failed_and_how_to_fix_it(tmp_path: Path) -> None:
    cli = Cli(f"http://127.0.0.1:{free_port()}", "mgk_unused", tmp_path / "config")
    result = await asyncio.to_thread(cli.run, "doctor", code=ExitCode.FAILED)
    assert "FAIL" in result.stdout
    assert "metalgate up" in result.stdout
    assert "0 of 1 checks passed; 1 failed" in result.stdout


def test_version_skew_names_what_is_behind_and_the_fix() -> None:
    gateways = [
        {"name": "rack-1", "replica_heartbeats": [{"replica_id": "r1", "version": "0.1.0"},
                                                   {"replica_id": "r2", "version": "0.0.9"}]}
    ]  # fmt: skip
    skewed = version_check("0.1.0", "0.1.0", gateways)
    assert not skewed.ok
    assert "rack-1 replica r2 runs 0.0.9" in skewed.detail
    assert "r1" not in skewed.detail
    assert "pip install metalgate==0.1.0" in skewed.fix
    assert not version_check("0.2.0", "0.1.0", []).ok
    assert version_check("0.1.0", "0.1.0", gateways[:0]).ok


def test_no_control_plane_worker_is_a_failure_with_its_fix() -> None:
    missing = control_plane_check({"temporal": "ok", "control_plane_pollers": 0})
    assert missing is not None and not missing.ok
    assert "metalgate worker control-plane" in missing.fix
    running = control_plane_check({"temporal": "ok", "control_plane_pollers": 2})
    assert running is not None and running.ok and "2 worker(s)" in running.detail
    # Without Temporal the temporal check fails already; an older API does not report it.
    assert control_plane_check({"temporal": "unreachable", "control_plane_pollers": None}) is None
    assert control_plane_check({"temporal": "ok"}) is None
