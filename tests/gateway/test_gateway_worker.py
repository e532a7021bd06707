"""The gateway worker on a real dev server: proxy, isolation, HA replicas, waiting for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.maas import MaasActivities
from activities.models import CHECK_ACCOUNT, CheckAccountInput, CheckAccountResult
from domain.gateway import GatewayIdentity
from domain.naming import gateway_queue
from tests.gateway.activity_runner import run_activity
from tests.gateway.conftest import Maas, StartMaas
from tests.gateway.fake_api import FakeApi
from tests.gateway.harness import RunActivity, RunActivityInput
from tests.support.connect_proxy import ConnectProxy
from tests.support.frontdoor import FrontDoorForGateways
from tests.support.ports import free_port
from tests.support.temporal import assert_eventually, new_worker
from workers.gateway import run_gateway, run_gateway_from_config
from workers.gateway_config import GatewayConfig, write_config


async def identity_for(
    frontdoor: FrontDoorForGateways, codec_keys: list[str], api_url: str
) -> GatewayIdentity:
    """A registered gateway whose Temporal connection goes through the test front door."""
    return await frontdoor.identity(api_url, codec_keys)


@asynccontextmanager
async def workflows(client: Client) -> AsyncIterator[str]:
    """A worker for the harness workflow only: activities go to gateway queues."""
    async with new_worker(client, RunActivity) as worker:
        yield worker.task_queue


@asynccontextmanager
async def gateway(
    client: Client, task_queue: str, replica_id: str
) -> AsyncIterator[MaasActivities]:
    """One gateway replica running in this process until the block ends."""
    activities = MaasActivities()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_gateway(client, task_queue, stop, replica_id=replica_id, activities=activities)
    )
    try:
        yield activities
    finally:
        stop.set()
        await task


async def check(client: Client, wf_queue: str, maas: Maas, gateway_queue_name: str) -> None:
    result = await run_activity(
        client,
        wf_queue,
        CHECK_ACCOUNT,
        CheckAccountInput(account=maas.account),
        CheckAccountResult,
        activity_queue=gateway_queue_name,
    )
    assert result.machines == 8


async def poller_identities(client: Client, task_queue: str) -> set[str]:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return {p.identity for p in response.pollers}


async def test_gateway_through_connect_proxy_works_and_heartbeats(
    frontdoor: FrontDoorForGateways,
    client: Client,
    codec_keys: list[str],
    maas: Maas,
    tmp_path: Path,
) -> None:
    port = free_port()
    identity = await identity_for(frontdoor, codec_keys, f"http://127.0.0.1:{port}")
    config_path = tmp_path / "gateway.json"
    async with FakeApi(identity, "token", port) as api, ConnectProxy() as proxy:
        api.fail_heartbeats = True  # an API outage must not stop the gateway
        config = GatewayConfig(
            **{**identity.model_dump(), "heartbeat_interval": 0.2}, temporal_proxy=proxy.address
        )
        write_config(config_path, config)
        stop = asyncio.Event()
        running = asyncio.create_task(
            run_gateway_from_config(config_path, replica_id="replica-a", stop=stop)
        )
        try:
            async with workflows(client) as wf_queue:
                await check(client, wf_queue, maas, identity.task_queue)
            assert proxy.tunnels, "the gateway's Temporal connection went through the proxy"
            assert set(proxy.tunnels) == {identity.frontdoor_address}
            assert api.heartbeats == []

            api.fail_heartbeats = False

            async def reported() -> None:
                assert api.heartbeats, "heartbeats resume once the API answers"
                last = api.heartbeats[-1]
                assert last.replica_id == "replica-a"
                assert last.maas_reachable == {maas.url: True}

            await assert_eventually(reported, within=5)
        finally:
            stop.set()
            await running
    assert not running.exception()


async def test_gateway_never_gets_another_gateways_tasks(client: Client, maas: Maas) -> None:
    queue_a, queue_b = gateway_queue(f"a-{uuid.uuid4()}"), gateway_queue(f"b-{uuid.uuid4()}")
    async with (
        gateway(client, queue_a, "a1") as a,
        gateway(client, queue_b, "b1") as b,
        workflows(client) as wf_queue,
    ):
        await asyncio.gather(*(check(client, wf_queue, maas, queue_a) for _ in range(6)))
    assert a.sessions.reachable == {maas.url: True}
    assert b.sessions.reachable == {}, "gateway B ran none of gateway A's activities"


async def test_two_replicas_share_one_queue(client: Client, start_maas: StartMaas) -> None:
    maas = await start_maas(faults={"latency_ms": 100})
    queue = gateway_queue(f"ha-{uuid.uuid4()}")
    # Replicas are separate processes in production, each with its own connection; the SDK
    # refuses two workers for one queue on a single client.
    other = await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        data_converter=client.data_converter,
    )
    async with (
        gateway(client, queue, "r1") as r1,
        gateway(other, queue, "r2") as r2,
        workflows(client) as wf_queue,
    ):

        async def both_served() -> None:
            # Until both replicas poll, one may take everything; keep sending work.
            await asyncio.gather(*(check(client, wf_queue, maas, queue) for _ in range(8)))
            assert r1.sessions.reachable and r2.sessions.reachable

        await assert_eventually(both_served, within=20)
    assert r1.sessions.reachable == {maas.url: True}
    assert r2.sessions.reachable == {maas.url: True}


async def test_work_waits_for_a_stopped_gateway_then_finishes(client: Client, maas: Maas) -> None:
    queue = gateway_queue(f"late-{uuid.uuid4()}")
    async with workflows(client) as wf_queue:
        handle = await client.start_workflow(
            RunActivity.run,
            RunActivityInput(
                activity=CHECK_ACCOUNT,
                arg=CheckAccountInput(account=maas.account).model_dump(mode="json"),
                task_queue=queue,
            ),
            id=f"test-waits-{uuid.uuid4()}",
            task_queue=wf_queue,
        )

        async def scheduled_not_started() -> None:
            description = await handle.describe()
            pending = description.raw_description.pending_activities
            assert len(pending) == 1
            assert pending[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            assert pending[0].attempt == 1

        await assert_eventually(scheduled_not_started)
        await asyncio.sleep(1.0)
        await scheduled_not_started()  # still waiting, not failed, while no gateway polls

        async with gateway(client, queue, "late"):
            outcome = await handle.result()
    assert CheckAccountResult.model_validate(outcome.result).machines == 8
