"""Agent reports go through the outbox: accepted while Temporal is down, coalesced per
cluster, and signalled with no store connection held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from domain.naming import create_workflow_id
from store.db import Database
from store.models import AgentOutboxRow
from tests.api.conftest import Api, ProjectKeys, new_project, temporal_address
from tests.api.test_accounts import create_account
from tests.api.test_agent import agent_cluster, beat, create_reports, merged
from tests.support.api_server import api_settings, running_api
from tests.support.tcp_forward import TcpForward
from tests.support.temporal import assert_eventually
from workflows.contracts import AgentReport


@asynccontextmanager
async def own_api(
    settings: Any, env: WorkflowEnvironment, **app_kwargs: Any
) -> AsyncIterator[tuple[Api, ProjectKeys, dict[str, Any], ControlPlaneActivities]]:
    """An API of the test's own settings, with a project, an account and the lifecycle writer."""
    async with running_api(
        settings, heartbeat_flush_seconds=0.2, agent_cache_seconds=1.0, **app_kwargs
    ) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            api = Api(url, settings, http)
            project = await new_project(api)
            account = await create_account(api, project.editor)
            database = await Database.open(settings)
            try:
                yield (
                    api,
                    project,
                    account,
                    ControlPlaneActivities(database.sessions, env.client, settings),
                )
            finally:
                await database.close()


async def outbox_rows(settings: Any) -> list[AgentOutboxRow]:
    database = await Database.open(settings)
    try:
        async with database.sessions() as session:
            return list((await session.scalars(select(AgentOutboxRow))).all())
    finally:
        await database.close()


async def test_reports_made_while_temporal_is_down_are_delivered_when_it_returns(
    env: WorkflowEnvironment,
    codec_keys: list[str],
    tmp_path: Path,
    control_plane_standins: Worker,
    system_gateway: Worker,
) -> None:
    async with TcpForward(temporal_address(env)) as temporal:
        settings = api_settings(tmp_path, temporal.address, codec_keys)
        async with own_api(settings, env) as (api, project, account, cp):
            cluster, agent = await agent_cluster(api, project, account, cp)
            await temporal.down()
            for node in ("node-1", "node-2", "node-3"):
                answer = await api.http.post(
                    "/v1/agent/heartbeat", json=beat(node, ready=True), headers=agent
                )
                assert answer.json() == {"ok": True, "signalled": True}, answer.text

            async def refused() -> None:
                rows = await outbox_rows(settings)
                assert [r.cluster_id for r in rows] == [cluster["id"]]
                assert rows[0].attempts >= 1, "the sender has not tried yet"

            await assert_eventually(refused, within=30)
            await temporal.up()

            async def delivered() -> None:
                reports = await create_reports(env, cluster["id"])
                assert sorted(merged(reports)) == ["node-1", "node-2", "node-3"]
                assert reports[-1].control_plane_ready is True
                assert await outbox_rows(settings) == []

            await assert_eventually(delivered, within=60, interval=0.5)


@pytest.mark.timeout(300)  # 1,000 HTTP reports through the whole API stack
async def test_a_storm_of_reports_becomes_few_signals_and_the_latest_state_wins(
    api: Api,
    project: ProjectKeys,
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
    system_gateway: Worker,
) -> None:
    account = await create_account(api, project.editor)
    nodes, per_node = [f"node-{i}" for i in range(10)], 100
    cluster, agent = await agent_cluster(api, project, account, cp_activities, nodes)

    async def report(node: str) -> None:
        for i in range(per_node):
            body = beat(node, ready=i % 2 == 1, message=f"{node} report {i}")
            answer = await api.http.post("/v1/agent/heartbeat", json=body, headers=agent)
            assert answer.json()["signalled"] is True, answer.text

    await asyncio.gather(*(report(n) for n in nodes))
    last = "; ".join(sorted(f"{n} report {per_node - 1}" for n in nodes))

    async def latest_delivered() -> list[AgentReport]:
        reports = await create_reports(env, cluster["id"])
        assert reports and reports[-1].message == last
        return reports

    reports = await assert_eventually(latest_delivered, within=60, interval=0.5)
    assert sorted(merged(reports)) == nodes
    assert all(n.ready for n in merged(reports).values())  # every node's last report: ready
    assert reports[-1].control_plane_ready and reports[-1].healthy
    assert len(reports) * 20 <= len(nodes) * per_node, f"{len(reports)} signals"


class HeldSignals(Interceptor):
    """Holds every agent-report signal of one workflow until released: Temporal is slow."""

    def __init__(self) -> None:
        self.workflow_id = ""
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.in_flight = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Holding(next, self)


class _Holding(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, root: HeldSignals) -> None:
        super().__init__(next)
        self._root = root

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        root = self._root
        if input.id != root.workflow_id:
            return await super().signal_workflow(input)
        root.in_flight += 1
        try:
            root.held.set()
            await root.release.wait()
            return await super().signal_workflow(input)
        finally:
            root.in_flight -= 1


async def test_a_held_signal_holds_no_store_connection(
    env: WorkflowEnvironment,
    codec_keys: list[str],
    tmp_path: Path,
    control_plane_standins: Worker,
    system_gateway: Worker,
) -> None:
    held = HeldSignals()
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=env.client.data_converter,
        interceptors=[held],
    )
    settings = api_settings(
        tmp_path, temporal_address(env), codec_keys, database_pool_size=1, database_pool_overflow=0
    )
    async with own_api(settings, env, temporal=client, agent_signal_timeout=60.0) as (
        api,
        project,
        account,
        cp,
    ):
        cluster, agent = await agent_cluster(api, project, account, cp)
        held.workflow_id = create_workflow_id(cluster["id"])
        first = asyncio.create_task(
            api.http.post("/v1/agent/heartbeat", json=beat("node-1"), headers=agent)
        )
        await held.held.wait()
        # The store's only connection serves other requests while that signal waits.
        got = await api.http.get(f"/v1/clusters/{cluster['id']}", headers=project.viewer)
        assert got.status_code == 200, got.text
        other = await api.http.post("/v1/agent/heartbeat", json=beat("node-2"), headers=agent)
        assert other.json()["signalled"] is True, other.text
        assert held.in_flight == 1, "the held signal ended before the other requests were served"
        assert (await first).json()["signalled"] is True
        held.release.set()

        async def delivered() -> None:
            reports = await create_reports(env, cluster["id"])
            assert sorted(merged(reports)) == ["node-1", "node-2"]

        await assert_eventually(delivered, within=30)
