"""`metalgate agent run --bootstrap ...`, the command a node's systemd unit runs, uses the real
backend: it reads the API server its kubeconfig names and reports that kubeconfig."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from agent.state import STATE_FILE
from tests.agent.fake_api import FakeAgentApi
from tests.agent.helpers import TOKEN, bootstrap, eventually
from tests.agent.kube_pki import ClusterPki
from tests.agent.kube_standin import KubeStandIn

METALGATE = str(Path(sys.executable).with_name("metalgate"))


async def test_agent_run_uses_the_real_backend_by_default(tmp_path: Path) -> None:
    # TLS with the cluster CA and an admin client certificate, as in kubeadm's admin.conf.
    kube = KubeStandIn("unused", pki=ClusterPki.make())
    kube.add_node("cp-1", control_plane=True)
    api = FakeAgentApi(TOKEN)
    await kube.start(tls_dir=tmp_path)
    await api.start()
    config = tmp_path / "bootstrap.json"
    config.write_text(
        bootstrap(api.url, "cp-1", role="control-plane", first=True).model_dump_json()
    )
    kubeconfig = kube.kubeconfig(tmp_path / "admin.conf")
    state_dir = tmp_path / "state"
    process = await asyncio.create_subprocess_exec(
        METALGATE, "agent", "run", "--bootstrap", str(config),
        "--kubeconfig", str(kubeconfig), "--state-dir", str(state_dir),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await eventually(lambda: bool(api.statuses_for("cp-1")), within=30, what="a status")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        await api.stop()
        await kube.stop()
    assert process.returncode == 0, stderr.decode()[-2000:]
    status = api.statuses_for("cp-1")[0]
    assert status.kubeconfig == kubeconfig.read_text()  # the real one, not a simulated one
    assert status.node.ready and status.node.kubelet_version == "v1.30.2"
    assert json.loads((state_dir / STATE_FILE).read_text())["kubeconfig_reported"] is True
