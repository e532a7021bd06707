"""The demo's story on a full stack started the way `metalgate up` starts it.

`metalgate demo` checks each step itself and exits non-zero when one misses; this test also
reads the outcomes from the API's store and from MAAS, and checks no process is left.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from google.protobuf.json_format import MessageToDict
from maas.client import connect as maas_connect

from domain.naming import OWNER_DATA_CLUSTER
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(), ui=free_port(), api=free_port(), maas=free_port(),
        agent_runtime=free_port(),
    )  # fmt: skip
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=ports,
        maas_machines=8,
        deploy_seconds=1.0,
        release_seconds=0.5,
        # Heartbeats every second and a node silent after 6 s keep the remediation step short.
        agent_runtime_args=["--heartbeat-interval", "1"],
        extra_env={
            "METALGATE_GATEWAY_PROBE_TIMEOUT": "3",
            "METALGATE_AGENT_NODE_SILENCE_TIMEOUT": "6",
        },
    )
    running = await start_stack(config)
    pids = [c.process.pid for c in running.supervisor.children.values()]
    try:
        yield running
    finally:
        await running.stop()
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        assert not left, f"processes left behind: {left}"


async def test_demo_story_end_to_end(stack: Stack) -> None:
    env = {
        **os.environ,
        "METALGATE_DATA_DIR": str(stack.config.data_dir.resolve()),
        "METALGATE_API_URL": stack.info.api_url,
    }
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "demo", "--timeout", "180",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await demo.communicate()
    text = output.decode()
    assert demo.returncode == 0, text
    # Each outcome the issue names, as the demo printed it after checking it.
    for line in (
        "phase Running",
        "waiting for every node on v1.31.2",
        "upgrade Kubernetes to v1.32.0 with the PCG stopped",
        "waiting for the scale to wait for the gateway",
        "waiting for the scale to finish",
        "its hardware dead for good",
        "remediation power-cycle of",
        "replaced by itself",
        "quarantined",
        "phase Deleted",
        "demo finished",
    ):
        assert line in text, f"missing {line!r} in:\n{text}"

    # MAAS itself: every machine Ready again and carrying none of our marks.
    maas = await maas_connect(stack.info.maas_url, apikey=stack.maas_key)
    machines = await maas.machines.list()
    assert {m.status_name for m in machines} == {"Ready"}
    assert not [m.hostname for m in machines if OWNER_DATA_CLUSTER in (m.owner_data or {})]
    # The machine the demo killed was quarantined, then repaired: nothing holds it back.
    assert not [m.hostname for m in machines if m.tags]
    await web_ui_decodes_history_through_the_codec_endpoint(stack)

    # The demo's own PCG (config under <data>/demo/) is gone; the stack's PCG runs on.
    demo_config = str(stack.config.data_dir.resolve() / "demo" / "pcg.json")
    assert not [
        p for p in psutil.process_iter(["cmdline"]) if demo_config in (p.info["cmdline"] or [])
    ]


async def web_ui_decodes_history_through_the_codec_endpoint(stack: Stack) -> None:
    """The UI is told our codec endpoint, and it turns history ciphertext into plaintext."""
    ui = stack.info.temporal_ui_url
    async with httpx.AsyncClient(timeout=10.0) as http:
        codec = (await http.get(f"{ui}/api/v1/settings")).json()["Codec"]
        endpoint = codec["Endpoint"]
        assert endpoint.startswith(f"{stack.info.api_url}/codec/ui/")
        [create] = [w async for w in stack.client.list_workflows("WorkflowType='ClusterCreate'")]
        history = await stack.client.get_workflow_handle(create.id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        payloads = {"payloads": [MessageToDict(p) for p in started.input.payloads]}
        assert payloads["payloads"][0]["metadata"]["encoding"] == "YmluYXJ5L2VuY3J5cHRlZA=="
        answer = await http.post(f"{endpoint}/decode", json=payloads, headers={"Origin": ui})
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == ui
        [plain] = answer.json()["payloads"]
        assert b"cluster_id" in base64.b64decode(plain["data"])
        wrong = await http.post(f"{stack.info.api_url}/codec/ui/guess/decode", json=payloads)
        assert wrong.status_code == 404
