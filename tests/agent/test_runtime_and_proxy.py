"""The boot-hook runtime, the cloud-init bootstrap parser and the proxy setting."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from aiohttp import web

from agent.api_client import build_http_client, proxy_for
from agent.cloudinit import BOOTSTRAP_PATH, NoBootstrap, bootstrap_from_user_data
from agent.runtime import BOOT_HOOK_PATH, AgentRuntime, build_runtime_app
from domain.agent_wire import AgentBootstrap
from domain.gateway import ProxySettings
from tests.agent.fake_api import FakeAgentApi
from tests.agent.forward_proxy import ForwardProxy
from tests.agent.helpers import FAST, TOKEN, bootstrap, eventually, simulated_agent
from tests.support.ports import free_port


def cloud_config(config: AgentBootstrap, encoding: str = "") -> bytes:
    content = config.model_dump_json()
    if encoding == "b64":
        content = base64.b64encode(content.encode()).decode()
    elif encoding == "gz+b64":
        content = base64.b64encode(gzip.compress(content.encode())).decode()
    entry = {"path": BOOTSTRAP_PATH, "permissions": "0600", "content": content}
    if encoding:
        entry["encoding"] = encoding
    document = {
        "write_files": [{"path": "/etc/motd", "content": "hi"}, entry],
        "runcmd": [["metalgate", "agent", "run", "--bootstrap", BOOTSTRAP_PATH]],
    }
    return ("#cloud-config\n" + yaml.safe_dump(document)).encode()


@pytest.mark.parametrize("encoding", ["", "b64", "gz+b64"])
def test_bootstrap_is_read_from_cloud_config(encoding: str) -> None:
    config = bootstrap("http://api:8080", "cp-1", role="control-plane", first=True)
    assert bootstrap_from_user_data(cloud_config(config, encoding)) == config


@pytest.mark.parametrize(
    "user_data", [b"#!/bin/sh\necho hi\n", b"#cloud-config\nruncmd: [ls]\n", b"#cloud-config\n: :"]
)
def test_user_data_without_a_bootstrap_is_refused(user_data: bytes) -> None:
    with pytest.raises(NoBootstrap):
        bootstrap_from_user_data(user_data)


@pytest.mark.parametrize(
    ("api_url", "no_proxy", "expected"),
    [
        ("http://api.example.com:8080", [], "http://proxy:3128"),
        ("https://api.example.com", [], "http://secure-proxy:3129"),
        ("http://api.example.com", [".example.com"], None),
        ("http://api.example.com", ["example.com"], None),
        ("http://10.1.2.3:8080", ["10.0.0.0/8"], None),
        ("http://10.1.2.3:8080", ["192.168.0.0/16", "localhost"], "http://proxy:3128"),
        ("http://anything", ["*"], None),
    ],
)
def test_proxy_choice_honours_no_proxy(
    api_url: str, no_proxy: list[str], expected: str | None
) -> None:
    proxy = ProxySettings(
        http_proxy="http://proxy:3128", https_proxy="http://secure-proxy:3129", no_proxy=no_proxy
    )
    assert proxy_for(api_url, proxy) == expected
    assert proxy_for(api_url, ProxySettings()) is None


@pytest.fixture
async def api() -> AsyncIterator[FakeAgentApi]:
    server = FakeAgentApi(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_agent_traffic_goes_through_the_proxy(api: FakeAgentApi) -> None:
    proxy = ForwardProxy()
    await proxy.start()
    config = bootstrap(
        api.url, "cp-1", role="control-plane", first=True, proxy=ProxySettings(http_proxy=proxy.url)
    )
    client = build_http_client(config.api_url, config.proxy)
    task = asyncio.create_task(simulated_agent(config, client).run())
    try:
        await eventually(lambda: bool(api.statuses_for("cp-1")), what="status via the proxy")
        await eventually(lambda: api.received.command_polls > 0, what="command poll via proxy")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await proxy.stop()
    assert f"POST {api.url}/v1/agent/status" in proxy.request_lines
    assert f"GET {api.url}/v1/agent/commands?node=cp-1" in proxy.request_lines
    relayed = len(proxy.request_lines)
    assert relayed >= len(api.received.heartbeats) + len(api.received.statuses)


@pytest.fixture
async def runtime_url() -> AsyncIterator[tuple[str, AgentRuntime]]:
    runtime = AgentRuntime(FAST)
    runner = web.AppRunner(build_runtime_app(runtime))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        await runner.cleanup()


def hook(event: str, config: AgentBootstrap, user_data: bytes, ip: str) -> dict[str, object]:
    return {
        "event": event,
        "system_id": config.system_id,
        "hostname": config.hostname,
        "ip_addresses": [ip],
        "user_data_b64": base64.b64encode(user_data).decode(),
    }


async def test_runtime_starts_agents_on_deployed_and_stops_them_on_released(
    api: FakeAgentApi, runtime_url: tuple[str, AgentRuntime]
) -> None:
    url, runtime = runtime_url
    leader = bootstrap(api.url, "cp-1", role="control-plane", first=True)
    worker = bootstrap(api.url, "w-1")
    async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
        for config, ip in ((worker, "10.0.0.12"), (leader, "10.0.0.11")):
            answer = await http.post(
                BOOT_HOOK_PATH, json=hook("deployed", config, cloud_config(config, "b64"), ip)
            )
            assert answer.status_code == 200 and answer.json()["started"] is True
        other = await http.post(
            BOOT_HOOK_PATH, json=hook("deployed", worker, b"#!/bin/sh\n", "10.0.0.13")
        )
        assert other.json() == {
            "started": False,
            "stopped": False,
            "reason": other.json()["reason"],
        }
        bad = await http.post(BOOT_HOOK_PATH, json={"event": "exploded"})
        assert bad.status_code == 422

        await eventually(
            lambda: bool(api.statuses_for("cp-1")) and bool(api.statuses_for("w-1")),
            what="both agents report",
        )
        kubeconfig = yaml.safe_load(api.statuses_for("cp-1")[0].kubeconfig or "")
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.11:6443"
        listing = (await http.get("/agents")).json()["agents"]
        assert {a["hostname"] for a in listing} == {"cp-1", "w-1"}
        assert (await http.get("/healthz")).json()["agents"] == 2

        answer = await http.post(BOOT_HOOK_PATH, json=hook("released", worker, b"", "10.0.0.12"))
        assert answer.json()["stopped"] is True
        assert runtime.agent(worker.system_id) is None and len(runtime) == 1
        beats = sum(1 for h in api.received.heartbeats if h.node.hostname == "w-1")
        await asyncio.sleep(0.3)  # three heartbeat intervals
        assert sum(1 for h in api.received.heartbeats if h.node.hostname == "w-1") == beats
        assert any(h.node.hostname == "cp-1" for h in api.received.heartbeats[-3:])
        again = await http.post(BOOT_HOOK_PATH, json=hook("released", worker, b"", "10.0.0.12"))
        assert again.json()["stopped"] is False
