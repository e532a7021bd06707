"""Commands run once across agent restarts: the agent persists what it ran and resumes."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.agent import Agent
from agent.api_client import result_key
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry
from agent.commands import MAX_MESSAGE, one_line
from agent.state import STATE_FILE
from domain.agent_wire import AgentCommand, CommandResult
from tests.agent.fake_api import API_KEY_PATTERN, FakeAgentApi
from tests.agent.helpers import FAST, TOKEN, bootstrap, eventually, simulated_agent

SLOW_UPGRADE = FAST.model_copy(update={"upgrade_per_node": 0.4})
UPGRADE = AgentCommand(id="up-1", kind="upgrade", args={"kubernetes_version": "v1.31.0"})


@pytest.fixture
async def api() -> AsyncIterator[FakeAgentApi]:
    server = FakeAgentApi(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Cluster:
    """cp-1 (whose agent the test restarts), w-1 and w-2 on one simulated cluster."""

    def __init__(self, api: FakeAgentApi, client: httpx.AsyncClient, state_root: Path) -> None:
        self.api = api
        self.client = client
        self.state_root = state_root
        self.registry = ClusterRegistry()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.agents: dict[str, Agent] = {}

    def start(self, hostname: str, **kwargs: object) -> Agent:
        agent = simulated_agent(
            bootstrap(self.api.url, hostname, **kwargs),  # type: ignore[arg-type]
            self.client,
            registry=self.registry,
            state_dir=self.state_root / hostname,
            timings=SLOW_UPGRADE,
        )
        self.agents[hostname] = agent
        self.tasks[hostname] = asyncio.create_task(agent.run())
        return agent

    def start_leader(self) -> Agent:
        return self.start("cp-1", role="control-plane", first=True)

    async def kill(self, hostname: str) -> None:
        """The agent process dies: nothing in memory survives, its state dir does."""
        task = self.tasks.pop(hostname)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        for hostname in list(self.tasks):
            await self.kill(hostname)

    def backend(self) -> SimulatedBackend:
        backend = self.agents["cp-1"].backend
        assert isinstance(backend, SimulatedBackend)
        return backend


@pytest.fixture
async def cluster(api: FakeAgentApi, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        group = Cluster(api, client, tmp_path)
        try:
            yield group
        finally:
            await group.stop()


async def bring_up(cluster: Cluster) -> None:
    cluster.start_leader()
    cluster.start("w-1")
    cluster.start("w-2")
    await eventually(
        lambda: all(
            any(s.node.ready for s in cluster.api.statuses_for(h)) for h in ("cp-1", "w-1", "w-2")
        ),
        what="cluster up",
    )


def drains(api: FakeAgentApi, hostname: str) -> int:
    """How often the node went from ready to not ready: once per upgrade."""
    readiness = [s.node.ready for s in api.statuses_for(hostname)]
    return sum(1 for before, after in itertools.pairwise(readiness) if before and not after)


async def test_a_leader_restarted_mid_upgrade_resumes_and_upgrades_each_node_once(
    api: FakeAgentApi, cluster: Cluster
) -> None:
    await bring_up(cluster)
    api.add_command(UPGRADE)
    await eventually(
        lambda: any(r.node == "w-1" for r in api.results_for("up-1")), what="w-1 upgrading"
    )
    await asyncio.sleep(0.1)  # inside w-1's kubelet step
    await cluster.kill("cp-1")
    assert "up-1" in api.commands, "the upgrade was not over when the agent died"

    cluster.start_leader()
    await eventually(lambda: "up-1" not in api.commands, within=10, what="upgrade finished")

    results = [(r.state, r.node, r.progress) for r in api.results_for("up-1")]
    # w-1's progress is reported again after the restart, with the same Idempotency-Key.
    assert results == [
        ("running", "cp-1", "1/3"),
        ("running", "w-1", "2/3"),
        ("running", "w-1", "2/3"),
        ("running", "w-2", "3/3"),
        ("succeeded", "", "3/3"),
    ]
    assert api.received.result_keys[1] == api.received.result_keys[2]
    assert len(set(api.received.result_keys)) == 4
    assert cluster.backend().cluster.upgrades == {"cp-1": 1, "w-1": 1, "w-2": 1}
    assert [drains(api, h) for h in ("cp-1", "w-1", "w-2")] == [1, 1, 1]
    # The new leader did not send the admin kubeconfig a second time.
    assert sum(1 for s in api.statuses_for("cp-1") if s.kubeconfig) == 1


async def test_a_finished_command_whose_answer_was_lost_is_reported_again_not_rerun(
    api: FakeAgentApi, cluster: Cluster
) -> None:
    await bring_up(cluster)
    api.lose_results = True
    api.add_command(UPGRADE)
    await eventually(
        lambda: cluster.backend().cluster.upgrades.get("w-2") == 1, what="upgrade done locally"
    )
    state = json.loads((cluster.state_root / "cp-1" / STATE_FILE).read_text())
    await eventually(
        lambda: (
            json.loads((cluster.state_root / "cp-1" / STATE_FILE).read_text())["commands"]["up-1"][
                "status"
            ]
            == "finished"
        ),
        what="final result saved",
    )
    await cluster.kill("cp-1")
    api.lose_results = False

    cluster.start_leader()
    await eventually(lambda: "up-1" not in api.commands, what="result reported again")
    final = CommandResult(state="succeeded", progress="3/3", message="3 nodes at v1.31.0")
    assert api.results_for("up-1") == [final]
    assert api.received.result_keys == [result_key("up-1", final)]
    assert cluster.backend().cluster.upgrades == {"cp-1": 1, "w-1": 1, "w-2": 1}
    assert state["format"] == 1 and state["kubeconfig_reported"] is True


def test_result_keys_name_the_command_and_its_state() -> None:
    running = CommandResult(state="running", node="w-1", progress="2/3", message="x")
    assert result_key("up-1", running) == "command:up-1:running:2-3"
    assert result_key("up-1", running) == result_key("up-1", running.model_copy())
    assert result_key("up-1", running) != result_key("up-2", running)
    long = result_key("x" * 200, running)
    assert API_KEY_PATTERN.fullmatch(long) and long == result_key("x" * 200, running)


def test_tool_output_becomes_one_bounded_line_keeping_its_end() -> None:
    output = (
        "apt-get install exited 100:\n" + "Reading lists\r\n" * 500 + "E: Version not found\x1b[0m"
    )
    message = one_line(output)
    assert len(message) <= MAX_MESSAGE and message.startswith("apt-get install exited 100:")
    assert message.endswith("E: Version not found [0m")
    assert not any(ord(c) < 32 for c in message)
