"""The fleet simulator: many light agents on one scheduler loop against a real HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.fleet import Fleet
from agent.stats import LatencyHistogram
from agent.timings import AgentTimings
from domain.agent_wire import AgentCommand
from tests.agent.fake_api import FakeAgentApi
from tests.agent.helpers import TOKEN, bootstrap, eventually

TIMINGS = AgentTimings.instant().model_copy(
    update={"heartbeat_interval": 0.2, "command_poll_interval": 0.05, "backoff_max": 0.2}
)


@pytest.fixture
async def api() -> AsyncIterator[FakeAgentApi]:
    server = FakeAgentApi(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def add_cluster(fleet: Fleet, api: FakeAgentApi, index: int) -> None:
    cid = f"c-{index}"
    fleet.add(bootstrap(api.url, f"cp-{index}", role="control-plane", first=True, cluster_id=cid))
    for worker in range(2):
        fleet.add(bootstrap(api.url, f"w-{index}-{worker}", cluster_id=cid))


def test_histogram_percentiles_are_close() -> None:
    histogram = LatencyHistogram()
    for millis in range(1, 1001):
        histogram.record(millis / 1000)
    assert histogram.percentile(0.5) == pytest.approx(0.5, rel=0.05)
    assert histogram.percentile(0.99) == pytest.approx(0.99, rel=0.05)
    assert histogram.maximum == 1.0 and histogram.count == 1000


async def test_a_fleet_brings_clusters_up_and_heartbeats(api: FakeAgentApi) -> None:
    async with Fleet(timings=TIMINGS, max_in_flight=64, poll_commands=False) as fleet:
        for index in range(200):
            add_cluster(fleet, api, index)
        fleet.start()
        await eventually(
            lambda: len({h.node.hostname for h in api.received.heartbeats}) == 600,
            within=20,
            what="every node heartbeats",
        )
        await fleet.pause()
        stats = fleet.stats()

    assert stats.agents == stats.ready_agents == 600
    assert stats.statuses_ok == len(api.received.statuses) == 600
    with_kubeconfig = [s.node.hostname for s in api.received.statuses if s.kubeconfig]
    assert sorted(with_kubeconfig) == sorted(f"cp-{i}" for i in range(200))
    assert stats.heartbeats_ok >= 600
    assert stats.errors == 0
    assert 0 < stats.latency_p50_ms <= stats.latency_p99_ms <= stats.latency_max_ms


async def test_a_fleet_holds_a_requested_heartbeat_rate(api: FakeAgentApi) -> None:
    async with Fleet(timings=TIMINGS, poll_commands=False) as fleet:
        for index in range(100):
            add_cluster(fleet, api, index)
        await fleet.run_for(0.5)  # bring-up
        stats = await fleet.run_for(1.0, rate=400)
    # Paced to the asked rate: a loaded machine may send fewer, never more (how many it
    # holds is bench/'s business, not a test's).
    assert 0 < stats.heartbeats_sent <= 400 * stats.elapsed_seconds * 1.25 + 10, stats
    assert stats.heartbeats_ok > 0


async def test_fleet_reports_survive_an_outage(api: FakeAgentApi) -> None:
    api.fail_with = 503
    async with Fleet(timings=TIMINGS) as fleet:
        for index in range(20):
            add_cluster(fleet, api, index)
        fleet.start()
        await eventually(lambda: fleet.stats().errors > 60, what="failed attempts")
        assert not api.received.statuses
        api.fail_with = None
        await eventually(lambda: len(api.received.statuses) == 60, what="queued statuses")
        await eventually(lambda: len(api.received.heartbeats) >= 60, what="heartbeats resume")
    assert sum(1 for s in api.received.statuses if s.kubeconfig) == 20


async def test_a_fleet_leader_runs_an_upgrade_node_by_node(api: FakeAgentApi) -> None:
    async with Fleet(timings=TIMINGS) as fleet:
        add_cluster(fleet, api, 0)
        fleet.start()
        await eventually(lambda: len(api.received.statuses) == 3, what="cluster up")
        api.add_command(
            AgentCommand(id="up", kind="upgrade", args={"kubernetes_version": "v1.31.0"})
        )
        await eventually(lambda: "up" not in api.commands, what="upgrade done")
        await eventually(lambda: fleet.stats().results_ok == 4, what="results counted")
        stats = fleet.stats()
    assert stats.commands_run == 1
    assert [(r.state, r.node) for r in api.results_for("up")] == [
        ("running", "cp-0"),
        ("running", "w-0-0"),
        ("running", "w-0-1"),
        ("succeeded", ""),
    ]
    assert {s.node.kubelet_version for s in api.received.statuses[-3:]} == {"v1.31.0"}
