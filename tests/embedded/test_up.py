"""`metalgate up` as a user runs it: a real process tree, Ctrl-C, and a second start."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.client import Client

from runtime.settings import Settings
from runtime.temporal import connect, temporal_binary
from tests.support.ports import free_port, free_port_block

pytestmark = pytest.mark.timeout(240)


def stack_ports() -> dict[str, int]:
    ports = {name: free_port() for name in ("temporal", "ui", "api", "maas", "agent")}
    return {**ports, "metrics": free_port_block(4)}


def up_argv(data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
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
            "--metrics-port",
            str(ports["metrics"]),
            "--machines",
            "6",
    ]  # fmt: skip


def start_up(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        up_argv(data_dir, ports),
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


def stop_up(process: subprocess.Popen[str]) -> tuple[list[psutil.Process], float]:
    """Ctrl-C `metalgate up`; answers the processes it had and how long it took to stop."""
    tree = psutil.Process(process.pid).children(recursive=True)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    return tree, time.monotonic() - started


def still_running(tree: list[psutil.Process]) -> list[int]:
    alive = []
    for p in tree:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def printed_urls(banner: str) -> list[str]:
    return [word for word in banner.split() if word.startswith("http://")]


async def client_for(ports: dict[str, int], data_dir: Path) -> Client:
    return await connect(
        Settings(data_dir=data_dir, temporal_address=f"127.0.0.1:{ports['temporal']}")
    )


async def test_up_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    ports = stack_ports()
    data_dir = tmp_path / "data"
    first = start_up(data_dir, ports)
    try:
        banner = await asyncio.to_thread(read_until_up, first)
        assert f"http://127.0.0.1:{ports['ui']}" in banner
        assert f"http://127.0.0.1:{ports['api']}/docs" in banner
        assert "admin API key" in banner
        urls = printed_urls(banner)
        assert f"http://127.0.0.1:{ports['maas']}/MAAS/" in urls
        # Every process that serves metrics prints where; each answers (checked below).
        for offset in range(4):
            assert f"http://127.0.0.1:{ports['metrics'] + offset}/metrics" in urls
        async with httpx.AsyncClient() as http:
            for url in urls:
                assert (await http.get(url)).status_code == 200, url
        maas_key = (data_dir / "secrets" / "maas-api-key").read_text().strip()
        codec_token = (data_dir / "secrets" / "ui-codec-token").read_text().strip()
        admin_key = (data_dir / "secrets" / "admin-api-key").read_text().strip()
        for child in psutil.Process(first.pid).children(recursive=True):
            argv = " ".join(child.cmdline())
            assert maas_key not in argv, f"the MAAS key is visible in ps: {argv[:80]}"
            assert admin_key not in argv, f"the admin key is visible in ps: {argv[:80]}"
            assert codec_token not in argv, f"the UI codec token is visible in ps: {argv[:80]}"
        async with httpx.AsyncClient() as http:
            ui_settings = (await http.get(f"http://127.0.0.1:{ports['ui']}/api/v1/settings")).json()
        # The Web UI still gets its codec endpoint, from a file instead of argv.
        assert ui_settings["Codec"]["Endpoint"] == (
            f"http://127.0.0.1:{ports['api']}/codec/ui/{codec_token}"
        )
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
        tree, took = stop_up(first)
    assert first.returncode == 0
    assert tree, "metalgate up started no children"
    assert not still_running(tree)
    assert took < 5.0, f"Ctrl-C took {took:.1f}s to stop everything"
    for log in (data_dir / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Fatal Python error" not in text, f"{log.name}:\n{text[-2000:]}"

    second = start_up(data_dir, ports)
    try:
        banner = await asyncio.to_thread(read_until_up, second)
        assert "admin API key   in" in banner  # the key is not printed twice
        client = await client_for(ports, data_dir)
        described = await client.get_workflow_handle(handle.id).describe()
        assert described.id == "survives-restart"
    finally:
        stop_up(second)


def test_a_taken_port_stops_up_before_it_starts_anything(tmp_path: Path) -> None:
    ports = stack_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["api"]))
        squatter.listen()
        done = subprocess.run(
            up_argv(tmp_path / "data", ports), capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    lines = [line for line in done.stdout.splitlines() if str(ports["api"]) in line]
    assert len(lines) == 1, done.stdout
    assert "--api-port" in lines[0]
    assert f"pid {os.getpid()}" in lines[0]  # who holds it
    assert not (tmp_path / "data" / "logs").exists(), "it started children anyway"


async def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    ports = stack_ports()
    up = start_up(tmp_path / "data", ports)
    try:
        await asyncio.to_thread(read_until_up, up)
        tree = psutil.Process(up.pid).children(recursive=True)
        assert any("temporal" in p.name() for p in tree)
    finally:
        up.kill()
        up.communicate(timeout=30)
    await asyncio.to_thread(psutil.wait_procs, tree, timeout=10)
    left = still_running(tree)
    for pid in left:  # do not leak them into the next test when this fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "children outlived a SIGKILLed metalgate up"


def test_make_run_passes_args_to_up() -> None:
    root = Path(__file__).resolve().parents[2]
    dry = subprocess.run(
        ["make", "-n", "-C", str(root), "run", "ARGS=--api-port 9080"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "metalgate up --api-port 9080" in dry.stdout
