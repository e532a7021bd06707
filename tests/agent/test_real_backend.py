"""The real node backend: its Kubernetes calls against a stand-in API server (the one stand-in
the issue allows, as no API server runs here) and its node tools through a recording runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from agent import commands
from agent.agent import Agent
from agent.backends.real.backend import CONTAINERD, RealBackend, RealTimings
from agent.backends.real.kube import DrainBlocked
from agent.backends.real.runner import CommandFailed
from agent.state import StateStore
from domain.agent_wire import AgentCommand, CommandResult
from tests.agent.fake_api import FakeAgentApi
from tests.agent.helpers import FAST, TOKEN, bootstrap, eventually
from tests.agent.kube_standin import Budget, KubeStandIn

KUBE_TOKEN = "kube-token-for-tests"
QUICK = RealTimings(
    poll_interval=0.02, drain_timeout=3, eviction_retry=0.02, step_timeout=5, kubelet_timeout=5
)


class RecordingRunner:
    """Stands in for the node's tools; `systemctl restart kubelet` brings the installed
    kubelet up, as on a node, by setting the version the stand-in API server reports."""

    def __init__(self, kube: KubeStandIn, hostname: str) -> None:
        self.kube = kube
        self.hostname = hostname
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self._installed = ""

    async def run(
        self, argv: Sequence[str], *, time_limit: float, env: Mapping[str, str] | None = None
    ) -> str:
        self.calls.append(list(argv))
        self.envs.append(dict(env or {}))
        for word in argv:
            if word.startswith("kubelet="):
                self._installed = "v" + word.removeprefix("kubelet=").removesuffix("-*")
        if list(argv) == ["systemctl", "restart", "kubelet"]:
            self.kube.set_kubelet(self.hostname, self._installed)
        return ""


@pytest.fixture
async def kube() -> AsyncIterator[KubeStandIn]:
    server = KubeStandIn(KUBE_TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def backend(
    kube: KubeStandIn, hostname: str, tmp_path: Path
) -> tuple[RealBackend, RecordingRunner]:
    runner = RecordingRunner(kube, hostname)
    config = kube.kubeconfig(tmp_path / f"{hostname}.conf")
    return RealBackend(hostname, config, runner=runner, timings=QUICK), runner


def upgrade_calls(version: str, first: bool) -> list[list[str]]:
    package = version.removeprefix("v") + "-*"
    install = ["apt-get", "install", "-y", "--allow-change-held-packages"]
    kubeadm = (
        ["kubeadm", "upgrade", "apply", version, "-y"] if first else ["kubeadm", "upgrade", "node"]
    )
    return [
        ["apt-get", "update"],
        [*install, f"kubeadm={package}"],
        kubeadm,
        ["apt-get", "update"],
        [*install, f"kubelet={package}", f"kubectl={package}"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "kubelet"],
    ]


async def test_nodes_are_read_with_their_ready_condition_and_kubelet_version(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("w-1")
    kube.add_node("cp-2", control_plane=True, version="v1.30.1")
    kube.add_node("cp-1", control_plane=True)
    kube.set_ready("w-1", False)
    real, _ = backend(kube, "cp-1", tmp_path)
    try:
        nodes = await real.nodes()
        assert [(n.name, n.control_plane, n.ready, n.kubelet_version) for n in nodes] == [
            ("cp-1", True, True, "v1.30.2"),
            ("cp-2", True, True, "v1.30.1"),
            ("w-1", False, False, "v1.30.2"),
        ]
        assert await real.find_node("nope") is None
        assert await real.admin_kubeconfig() == (tmp_path / "cp-1.conf").read_text()
    finally:
        await real.close()


async def test_bring_up_waits_for_the_node_to_register(kube: KubeStandIn, tmp_path: Path) -> None:
    real, _ = backend(kube, "cp-1", tmp_path)
    phases: list[str] = []
    waiting = asyncio.create_task(real.bring_up(phases.append))
    try:
        await eventually(lambda: len(phases) >= 2, what="bring-up waiting")
        assert not waiting.done() and "node cp-1 not registered yet" in phases[-1]
        kube.add_node("cp-1", control_plane=True)
        await asyncio.wait_for(waiting, 2)
    finally:
        waiting.cancel()
        await real.close()


async def test_an_upgrade_runs_kubeadms_documented_steps_one_node_at_a_time(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("w-1")
    kube.add_pod("kube-system", "kube-apiserver-cp-1", "cp-1", mirror=True)
    kube.add_pod("kube-system", "coredns-1", "cp-1")
    kube.add_pod("kube-system", "kube-proxy-w1", "w-1", owner="DaemonSet")
    kube.add_pod("shop", "web-1", "w-1")
    kube.budgets.append(Budget("web-pdb", {"web-1"}, refusals=3))
    leader, leader_runner = backend(kube, "cp-1", tmp_path)
    worker, worker_runner = backend(kube, "w-1", tmp_path)
    # The worker's own agent answers the steps that must run on its machine.
    follower = asyncio.create_task(worker.watch_self(lambda state: None))
    posted: list[CommandResult] = []
    command = AgentCommand(id="up", kind="upgrade", args={"kubernetes_version": "v1.31.0"})
    try:
        await commands.execute(command, leader, StateStore(tmp_path / "state"), posted.append)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await leader.close()
        await worker.close()

    assert posted[-1].state == "succeeded", posted[-1]
    assert leader_runner.calls == upgrade_calls("v1.31.0", first=True)
    assert worker_runner.calls == upgrade_calls("v1.31.0", first=False)
    assert {e["DEBIAN_FRONTEND"] for e in leader_runner.envs} == {"noninteractive"}
    for node in kube.nodes.values():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.31.0"
        assert node["spec"]["unschedulable"] is False
    # Static (mirror) and DaemonSet pods stay; the PDB's 429s were retried until it allowed.
    assert set(kube.pods) == {
        ("kube-system", "kube-apiserver-cp-1"),
        ("kube-system", "kube-proxy-w1"),
    }
    events = [line for line in kube.log if not line.startswith("list")]
    cordon = 'patch {} {{"spec": {{"unschedulable": {}}}}}'
    assert events.index(cordon.format("cp-1", "true")) < events.index("evict kube-system/coredns-1")
    assert events.index("evict kube-system/coredns-1") < events.index(
        cordon.format("cp-1", "false")
    )
    assert events.index(cordon.format("cp-1", "false")) < events.index(cordon.format("w-1", "true"))
    assert events.count("refuse shop/web-1") == 3
    assert events.index("evict shop/web-1") < events.index(cordon.format("w-1", "false"))


async def test_a_drain_blocked_by_a_budget_times_out_naming_it(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("w-1")
    kube.add_pod("shop", "web-1", "w-1")
    kube.budgets.append(Budget("web-pdb", {"web-1"}, expected=2))
    real, _ = backend(kube, "cp-1", tmp_path)
    real.timings = QUICK.model_copy(update={"drain_timeout": 0.3})
    try:
        with pytest.raises(DrainBlocked) as blocked:
            await real.drain("w-1")
    finally:
        await real.close()
    message = str(blocked.value)
    assert "drain of w-1 timed out" in message
    assert "shop/web-1 blocked by PodDisruptionBudget web-pdb" in message
    assert kube.nodes["w-1"]["spec"]["unschedulable"] is True  # left cordoned, as kubectl does


async def test_a_failed_step_on_another_node_fails_the_upgrade_with_its_output(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("w-1")
    leader, _ = backend(kube, "cp-1", tmp_path)
    worker, worker_runner = backend(kube, "w-1", tmp_path)

    async def broken(argv: Sequence[str], **kwargs: object) -> str:
        raise CommandFailed("apt-get install exited 100: E: Version '1.31.0-*' not found")

    worker_runner.run = broken  # type: ignore[method-assign]
    follower = asyncio.create_task(worker.watch_self(lambda state: None))
    posted: list[CommandResult] = []
    command = AgentCommand(id="up", kind="upgrade", args={"kubernetes_version": "v1.31.0"})
    try:
        await commands.execute(command, leader, StateStore(None), posted.append)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await leader.close()
        await worker.close()
    assert posted[-1].state == "failed"
    assert "kubeadm:v1.31.0 failed on w-1" in posted[-1].message
    assert "not found" in posted[-1].message


async def test_the_agent_on_a_real_node_reports_the_real_kubeconfig_and_node(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    api = FakeAgentApi(TOKEN)
    await api.start()
    real, _ = backend(kube, "cp-1", tmp_path)
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        agent = Agent(
            bootstrap(api.url, "cp-1", role="control-plane", first=True),
            client,
            real,
            state_dir=tmp_path / "state",
            timings=FAST,
        )
        task = asyncio.create_task(agent.run())
        try:
            await eventually(lambda: bool(api.statuses_for("cp-1")), what="status")
            kube.set_kubelet("cp-1", "v1.30.3")
            await eventually(
                lambda: api.statuses_for("cp-1")[-1].node.kubelet_version == "v1.30.3",
                what="a changed kubelet version reported",
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await api.stop()
    first = api.statuses_for("cp-1")[0]
    assert first.node.ready and first.control_plane_ready
    assert first.kubeconfig == (tmp_path / "cp-1.conf").read_text()


class EtcdRunner(RecordingRunner):
    """`crictl` and the etcd container's `etcdctl`, answering from a member list."""

    def __init__(self, kube: KubeStandIn, hostname: str, members: dict[str, int]) -> None:
        super().__init__(kube, hostname)
        self.members = members

    async def run(
        self, argv: Sequence[str], *, time_limit: float, env: Mapping[str, str] | None = None
    ) -> str:
        await super().run(argv, time_limit=time_limit, env=env)
        if argv[:2] == ["crictl", "--runtime-endpoint"] and "ps" in argv:
            return "3f2a9c\n"
        if "member" in argv and argv[-1] == "json":
            listing = [{"ID": number, "name": name} for name, number in self.members.items()]
            return json.dumps({"header": {}, "members": listing})
        if "remove" in argv:
            self.members = {n: i for n, i in self.members.items() if f"{i:x}" != argv[-1]}
        return ""


async def test_cordon_drain_and_uncordon_use_the_kubernetes_api(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("w-1")
    kube.add_pod("kube-system", "kube-proxy-w1", "w-1", owner="DaemonSet")
    kube.add_pod("shop", "web-1", "w-1")
    kube.budgets.append(Budget("web-pdb", {"web-1"}, refusals=2))
    leader, runner = backend(kube, "cp-1", tmp_path)
    store = StateStore(tmp_path / "state")
    posted: list[CommandResult] = []
    try:
        for kind in ("cordon", "drain", "uncordon"):
            command = AgentCommand(id=kind, kind=kind, args={"node": "w-1", "system_id": "m1"})
            await commands.execute(command, leader, store, posted.append)
            assert posted[-1].state == "succeeded", posted[-1]
            if kind == "cordon":
                assert kube.nodes["w-1"]["spec"]["unschedulable"] is True
                assert ("shop", "web-1") in kube.pods  # a cordon evicts nothing
    finally:
        await leader.close()
    assert [r.message for r in posted if r.state == "succeeded"] == [
        "w-1 cordoned",
        "w-1 drained",
        "w-1 uncordoned",
    ]
    # The drain evicted through the Eviction API, retrying the budget's 429s; DaemonSet pods stay.
    assert set(kube.pods) == {("kube-system", "kube-proxy-w1")}
    events = [line for line in kube.log if not line.startswith("list")]
    assert events.count("refuse shop/web-1") == 2
    assert events[-1] == 'patch w-1 {"spec": {"unschedulable": false}}'
    assert runner.calls == []  # nothing ran on a machine


async def test_repave_takes_a_control_plane_node_out_of_etcd_before_its_node_goes(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("cp-2", control_plane=True)
    kube.add_node("w-1")
    kube.add_pod("kube-system", "coredns-2", "cp-2")
    # The command runs on cp-1, another control plane than the one that leaves.
    runner = EtcdRunner(kube, "cp-1", {"cp-1": 0x8E9E05C52164694D, "cp-2": 0x91BC3C398FB3C146})
    leader = RealBackend(
        "cp-1", kube.kubeconfig(tmp_path / "cp-1.conf"), runner=runner, timings=QUICK
    )
    posted: list[CommandResult] = []
    store = StateStore(None)
    try:
        for node in ("cp-2", "w-1"):
            command = AgentCommand(id=f"out-{node}", kind="repave", args={"node": node})
            await commands.execute(command, leader, store, posted.append)
            assert posted[-1].state == "succeeded", posted[-1]
    finally:
        await leader.close()
    # cp-2's member went through cp-1's etcd; a worker has no etcd member to remove.
    assert list(runner.members) == ["cp-1"]
    removes = [c for c in runner.calls if "remove" in c]
    assert len(removes) == 1 and removes[0][-1] == "91bc3c398fb3c146"
    assert set(kube.nodes) == {"cp-1"}
    events = [line for line in kube.log if not line.startswith("list")]
    assert events.index("evict kube-system/coredns-2") < events.index("delete cp-2")


async def test_a_dead_control_planes_etcd_member_and_node_are_removed(
    kube: KubeStandIn, tmp_path: Path
) -> None:
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("cp-2", control_plane=True)
    kube.set_ready("cp-1", False)
    runner = EtcdRunner(kube, "cp-2", {"cp-1": 0x8E9E05C52164694D, "cp-2": 0x91BC3C398FB3C146})
    real = RealBackend(
        "cp-2", kube.kubeconfig(tmp_path / "cp-2.conf"), runner=runner, timings=QUICK
    )
    try:
        await real.remove_etcd_member("cp-1")
        await real.remove_etcd_member("cp-1")  # gone is done: nothing removed twice
        await real.delete_node("cp-1")
        await real.delete_node("cp-1")
    finally:
        await real.close()
    assert list(runner.members) == ["cp-2"]
    removes = [c for c in runner.calls if "remove" in c]
    assert len(removes) == 1 and removes[0][-1] == "8e9e05c52164694d"
    # etcdctl runs inside the node's own etcd container, with kubeadm's etcd certificates.
    assert removes[0][:4] == ["crictl", "--runtime-endpoint", CONTAINERD, "exec"]
    assert "--cacert=/etc/kubernetes/pki/etcd/ca.crt" in removes[0]
    assert "cp-1" not in kube.nodes and "cp-2" in kube.nodes
