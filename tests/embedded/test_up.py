"""`metalgate up` as a user runs it: a real process tree, Ctrl-C, and a second start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.client import Client

from runtime.settings import Settings
from runtime.temporal import connect, temporal_binary
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(240)


def start_up(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--temporal-port",
            str(ports["temporal"]),
            "--ui-port",
            str(ports["ui"]),
            "--api-port",
            str(ports["api"]),
            "--maas-port",
            str(ports["maas"]),
            "--agent-port",
            str(ports["agent"]),
            "--machines",
            "6",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "METALGATE_DATA_DIR": str(data_dir)},
    )


def read_until_up(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return "".join(seen)
    raise AssertionError("metalgate up exited before it was up:\n" + "".join(seen))


def stop_up(process: subprocess.Popen[str]) -> list[psutil.Process]:
    tree = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    return tree


async def client_for(ports: dict[str, int], data_dir: Path) -> Client:
    return await connect(
        Settings(data_dir=data_dir, temporal_address=f"127.0.0.1:{ports['temporal']}")
    )


async def test_up_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("temporal", "ui", "api", "maas", "agent")}
    data_dir = tmp_path / "data"
    first = start_up(data_dir, ports)
    try:
        banner = await asyncio.to_thread(read_until_up, first)
        assert f"http://127.0.0.1:{ports['ui']}" in banner
        assert f"http://127.0.0.1:{ports['api']}/docs" in banner
        assert "admin API key" in banner
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{ports['ui']}/")).status_code == 200
            assert (await http.get(f"http://127.0.0.1:{ports['api']}/docs")).status_code == 200
        listed = await asyncio.to_thread(
            subprocess.run,
            [str(temporal_binary()), "operator", "search-attribute", "list",
             "--address", f"127.0.0.1:{ports['temporal']}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        for name in ("ClusterId", "ClusterName", "Project", "ClusterPhase", "GatewayId"):
            assert name in listed.stdout
        client = await client_for(ports, data_dir)
        handle = await client.start_workflow(
            "NoWorkerPollsThis", id="survives-restart", task_queue="nobody-polls"
        )
    finally:
        tree = stop_up(first)
    assert first.returncode == 0
    assert tree, "metalgate up started no children"
    assert not [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    second = start_up(data_dir, ports)
    try:
        banner = await asyncio.to_thread(read_until_up, second)
        assert "admin API key   in" in banner  # the key is not printed twice
        client = await client_for(ports, data_dir)
        described = await client.get_workflow_handle(handle.id).describe()
        assert described.id == "survives-restart"
    finally:
        stop_up(second)
