"""The agent against a real HTTP server implementing the agent routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml

from agent.agent import Agent
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry, SimulatedCluster
from agent.outbox import ReportKind
from domain.agent_wire import AgentCommand
from tests.agent.fake_api import FakeAgentApi
from tests.agent.helpers import TOKEN, bootstrap, eventually, simulated_agent


@pytest.fixture
async def api() -> AsyncIterator[FakeAgentApi]:
    server = FakeAgentApi(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
        yield http


class Nodes:
    """Agents of one cluster sharing a process, as in the agent runtime."""

    def __init__(self, api: FakeAgentApi, client: httpx.AsyncClient) -> None:
        self.api = api
        self.client = client
        self.registry = ClusterRegistry()
        self.tasks: list[asyncio.Task[None]] = []
        self.agents: dict[str, Agent] = {}

    def start(self, hostname: str, **kwargs: object) -> Agent:
        agent = simulated_agent(
            bootstrap(self.api.url, hostname, **kwargs),  # type: ignore[arg-type]
            self.client,
            node_ip="10.20.0.5",
            registry=self.registry,
        )
        self.agents[hostname] = agent
        self.tasks.append(asyncio.create_task(agent.run()))
        return agent

    def cluster(self) -> SimulatedCluster:
        """The simulated Kubernetes API the agents share."""
        backend = next(iter(self.agents.values())).backend
        assert isinstance(backend, SimulatedBackend)
        return backend.cluster

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def nodes(api: FakeAgentApi, client: httpx.AsyncClient) -> AsyncIterator[Nodes]:
    group = Nodes(api, client)
    try:
        yield group
    finally:
        await group.stop()


def cluster_ready(api: FakeAgentApi, *hostnames: str) -> bool:
    return all(any(s.node.ready for s in api.statuses_for(hostname)) for hostname in hostnames)


async def test_first_control_plane_reports_ready_with_kubeconfig_once(
    api: FakeAgentApi, nodes: Nodes
) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    await eventually(lambda: cluster_ready(api, "cp-1"), what="cp-1 ready")
    await asyncio.sleep(0.3)  # let more heartbeats and any repeated status arrive

    statuses = api.statuses_for("cp-1")
    assert statuses[0].control_plane_ready and statuses[0].node.ready
    assert statuses[0].node.kubelet_version == "v1.30.2"
    assert [s.kubeconfig is not None for s in statuses] == [True] + [False] * (len(statuses) - 1)
    config = yaml.safe_load(statuses[0].kubeconfig or "")
    assert config["clusters"][0]["cluster"]["server"] == "https://10.20.0.5:6443"
    assert config["current-context"] == "kubernetes-admin@demo"
    assert "Simulated" in (statuses[0].kubeconfig or "")


async def test_worker_joins_only_after_the_control_plane_is_up(
    api: FakeAgentApi, nodes: Nodes
) -> None:
    nodes.start("w-1")  # boots first, as MAAS may deploy it sooner
    await asyncio.sleep(0.15)
    nodes.start("cp-1", role="control-plane", first=True)
    await eventually(lambda: cluster_ready(api, "cp-1", "w-1"), what="both nodes ready")

    order = [s.node.hostname for s in api.received.statuses if s.node.ready]
    assert order.index("cp-1") < order.index("w-1")
    worker = api.statuses_for("w-1")[0]
    assert worker.control_plane_ready and worker.kubeconfig is None
    assert worker.node.role == "worker" and worker.node.system_id == "sys-w-1"


async def test_heartbeats_flow_while_booting_and_after(api: FakeAgentApi, nodes: Nodes) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    await eventually(lambda: len(api.received.heartbeats) >= 4, what="four heartbeats")
    first, last = api.received.heartbeats[0], api.received.heartbeats[-1]
    assert not first.node.ready and first.message.startswith("kubeadm init")
    await eventually(lambda: api.received.heartbeats[-1].node.ready, what="ready heartbeat")
    last = api.received.heartbeats[-1]
    assert last.control_plane_ready and last.healthy
    assert len(set(api.received.idempotency_keys)) == len(api.received.idempotency_keys)


async def test_upgrade_runs_node_by_node_and_posts_results(api: FakeAgentApi, nodes: Nodes) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    nodes.start("w-1")
    nodes.start("w-2")
    await eventually(lambda: cluster_ready(api, "cp-1", "w-1", "w-2"), what="cluster up")

    api.add_command(AgentCommand(id="up-1", kind="upgrade", args={"kubernetes_version": "v1.31.0"}))
    await eventually(lambda: "up-1" not in api.commands, what="upgrade finished")

    results = api.results_for("up-1")
    assert [(r.state, r.node, r.progress) for r in results] == [
        ("running", "cp-1", "1/3"),
        ("running", "w-1", "2/3"),
        ("running", "w-2", "3/3"),
        ("succeeded", "", "3/3"),
    ]
    for hostname in ("cp-1", "w-1", "w-2"):
        await eventually(
            lambda h=hostname: api.statuses_for(h)[-1].node.kubelet_version == "v1.31.0",  # type: ignore[misc]
            what=f"{hostname} reports v1.31.0",
        )
        versions = [(s.node.ready, s.node.kubelet_version) for s in api.statuses_for(hostname)]
        assert versions[-2:] == [(False, "v1.30.2"), (True, "v1.31.0")]
    # Each node is drained only after the previous one is back.
    drains = [s.node.hostname for s in api.received.statuses if not s.node.ready]
    assert drains == ["cp-1", "w-1", "w-2"]


async def test_bad_commands_fail_with_a_reason_and_repave_works(
    api: FakeAgentApi, nodes: Nodes
) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    nodes.start("w-1")
    await eventually(lambda: cluster_ready(api, "cp-1", "w-1"), what="cluster up")

    api.add_command(AgentCommand(id="down", kind="upgrade", args={"kubernetes_version": "v1.29.0"}))
    api.add_command(AgentCommand(id="junk", kind="upgrade", args={"kubernetes_version": "1.31"}))
    api.add_command(AgentCommand(id="what", kind="reboot"))
    api.add_command(AgentCommand(id="ghost", kind="repave", args={"node": "nope"}))
    api.add_command(AgentCommand(id="rp", kind="repave", args={"node": "sys-w-1"}))
    await eventually(lambda: not api.commands, what="all commands finished")

    assert "downgrade" in api.results_for("down")[-1].message
    assert "v1.30.2" in api.results_for("junk")[-1].message
    assert "unknown command" in api.results_for("what")[-1].message
    assert api.results_for("ghost")[-1].state == "failed"
    assert [(r.state, r.node) for r in api.results_for("rp")] == [
        ("running", "w-1"),
        ("succeeded", "w-1"),
    ]
    # Repave takes the node out: drained, then gone until its machine joins again.
    cluster = nodes.cluster()
    assert cluster.operations == [("drain", "w-1"), ("take-out", "w-1")]
    assert cluster.find("w-1") is None


async def test_cordon_drain_uncordon_run_on_the_named_node(api: FakeAgentApi, nodes: Nodes) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    nodes.start("w-1")
    await eventually(lambda: cluster_ready(api, "cp-1", "w-1"), what="cluster up")
    for kind in ("cordon", "drain", "uncordon"):
        api.add_command(AgentCommand(id=kind, kind=kind, args={"node": "w-1"}))
    api.add_command(AgentCommand(id="ghost", kind="drain", args={"node": "nope"}))
    await eventually(lambda: not api.commands, what="all commands finished")

    for kind, done in (("cordon", "cordoned"), ("drain", "drained"), ("uncordon", "uncordoned")):
        assert [(r.state, r.node) for r in api.results_for(kind)] == [
            ("running", "w-1"),
            ("succeeded", "w-1"),
        ]
        assert api.results_for(kind)[-1].message == f"w-1 {done}"
    assert api.results_for("ghost")[-1].state == "failed"
    assert "no node 'nope'" in api.results_for("ghost")[-1].message
    cluster = nodes.cluster()
    assert cluster.operations == [("cordon", "w-1"), ("drain", "w-1"), ("uncordon", "w-1")]
    node = cluster.find("w-1")
    assert node is not None and node.schedulable and node.ready  # a drain keeps it Ready


async def test_every_control_plane_agent_polls_and_the_runner_runs_commands(
    api: FakeAgentApi, nodes: Nodes
) -> None:
    nodes.start("cp-1", role="control-plane", first=True)
    nodes.start("cp-2", role="control-plane")
    nodes.start("w-1")
    await eventually(lambda: cluster_ready(api, "cp-1", "cp-2", "w-1"), what="cluster up")
    api.runner = "cp-1"
    api.add_command(AgentCommand(id="c-1", kind="cordon", args={"node": "w-1"}))
    await eventually(lambda: "c-1" not in api.commands, what="cordon by cp-1")
    # A repave replaced cp-1: the API now hands commands to cp-2, whose agent runs them.
    api.runner = "cp-2"
    api.add_command(AgentCommand(id="u-1", kind="uncordon", args={"node": "w-1"}))
    await eventually(lambda: "u-1" not in api.commands, what="uncordon by cp-2")
    assert api.results_for("u-1")[-1].state == "succeeded"
    assert {"cp-1", "cp-2"} <= set(api.received.polled_by)
    assert "w-1" not in api.received.polled_by  # workers never run commands


async def test_a_surviving_control_plane_takes_a_dead_one_out_of_etcd(
    api: FakeAgentApi, nodes: Nodes
) -> None:
    """The first control plane is the one that died: the command names another runner,
    whose agent removes the dead node's etcd member and its Node."""
    first = nodes.start("cp-1", role="control-plane", first=True)
    nodes.start("cp-2", role="control-plane")
    nodes.start("cp-3", role="control-plane")
    await eventually(lambda: cluster_ready(api, "cp-1", "cp-2", "cp-3"), what="cluster up")
    backend = first.backend
    assert isinstance(backend, SimulatedBackend)
    cluster = backend.cluster
    assert cluster.etcd_members == {"cp-1", "cp-2", "cp-3"}
    nodes.tasks[0].cancel()  # cp-1's machine dies; its etcd member stays until removed
    await asyncio.gather(nodes.tasks[0], return_exceptions=True)
    assert cluster.etcd_members == {"cp-1", "cp-2", "cp-3"}

    api.add_command(
        AgentCommand(
            id="rm-1",
            kind="remediate",
            args={"node": "cp-1", "runner": "cp-2", "etcd_member": "true"},
        )
    )
    await eventually(lambda: "rm-1" not in api.commands, within=10, what="cp-2 ran it")
    result = api.results_for("rm-1")[-1]
    assert (result.state, result.node, result.message) == (
        "succeeded",
        "cp-1",
        "etcd member and Node removed",
    )
    assert cluster.etcd_members == {"cp-2", "cp-3"}


async def test_reports_survive_an_api_outage(api: FakeAgentApi, nodes: Nodes) -> None:
    leader = nodes.start("cp-1", role="control-plane", first=True)
    worker = nodes.start("w-1")
    await eventually(lambda: cluster_ready(api, "cp-1", "w-1"), what="cluster up")

    api.add_command(AgentCommand(id="up-1", kind="upgrade", args={"kubernetes_version": "v1.31.0"}))
    polls = api.received.command_polls
    await eventually(lambda: bool(api.results_for("up-1")), what="upgrade started")
    await api.stop()  # the API goes away mid-upgrade
    assert api.received.command_polls > polls

    # The agents keep working: the upgrade finishes locally and reports pile up.
    await eventually(
        lambda: worker.node.kubelet_version == "v1.31.0", what="worker upgraded offline"
    )
    await eventually(lambda: leader.pending >= 2, what="leader queued results")
    await asyncio.sleep(0.4)  # several failed retries, heartbeats coalesced meanwhile
    assert leader.pending <= 6  # <= 3 results + 2 statuses; heartbeats coalesced into one

    await api.start()
    api.fail_with = 503  # then it answers but is unhealthy
    await asyncio.sleep(0.3)
    api.fail_with = None
    await eventually(lambda: "up-1" not in api.commands, what="results delivered")
    await eventually(lambda: leader.pending == 0 and worker.pending == 0, what="outboxes empty")

    results = [(r.state, r.node) for r in api.results_for("up-1")]
    assert results == [("running", "cp-1"), ("running", "w-1"), ("succeeded", "")]
    for hostname in ("cp-1", "w-1"):
        versions = [(s.node.ready, s.node.kubelet_version) for s in api.statuses_for(hostname)]
        assert versions == [(True, "v1.30.2"), (False, "v1.30.2"), (True, "v1.31.0")]
    assert len(set(api.received.idempotency_keys)) == len(api.received.idempotency_keys)
    assert leader.delivered[ReportKind.COMMAND_RESULT] == 3
