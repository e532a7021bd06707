"""Waiting for deploys and releases through the gateway's one watcher, against the emulator.

MAAS load must not grow with the machines in transition: however many wait activities run,
the watcher reads MAAS once per interval per account, filtered by their system ids (counted
in the emulator's request log), and each activity still ends with its own machine's fate.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from activities.maas import MaasActivities
from activities.maas_answers import VERSION
from activities.maas_session import MaasSessions
from activities.models import (
    ACQUIRE_MACHINES,
    DEPLOY_MACHINE,
    RELEASE_MACHINES,
    WAIT_DEPLOYED,
    WAIT_RELEASED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    DeployMachineInput,
    DeployMachineResult,
    ReleaseMachinesInput,
    ReleaseMachinesResult,
    WaitDeployedInput,
    WaitDeployedResult,
    WaitReleasedInput,
    WaitReleasedResult,
)
from domain.cluster import ErasePolicy, MachineConstraints, NodePool
from domain.phases import Reason
from maas_emulator.requests import LoggedRequest
from tests.gateway.activity_runner import activity_failure, run_activity
from tests.gateway.conftest import Maas, StartMaas
from tests.gateway.harness import RunActivity, RunActivityInput
from tests.support.temporal import assert_eventually, new_worker

SMALL = MachineConstraints(min_cpu=2, min_memory_mib=4096)
FOREVER = 3600.0  # a transition that never ends while the test looks at it
POLL = 0.1


@pytest.fixture
def activities() -> MaasActivities:
    return MaasActivities()


@pytest.fixture
async def queue(client: Client, activities: MaasActivities) -> AsyncIterator[str]:
    worker = new_worker(client, RunActivity, activities=activities.all())
    async with worker:
        yield worker.task_queue


async def take(client: Client, queue: str, maas: Maas, cluster: str, count: int) -> list[str]:
    request = AcquireMachinesInput(
        account=maas.account,
        cluster_id=cluster,
        request_id="r1",
        pools=[NodePool(name="workers", count=count, constraints=SMALL)],
    )
    result = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)
    return [m.system_id for m in result.machines]


async def deploying(client: Client, queue: str, maas: Maas, cluster: str, count: int) -> list[str]:
    system_ids = await take(client, queue, maas, cluster, count)
    for system_id in system_ids:
        deploy = DeployMachineInput(
            account=maas.account,
            cluster_id=cluster,
            system_id=system_id,
            distro_series="jammy",
            user_data="#cloud-config\n",
        )
        await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)
    return system_ids


def wait_input(maas: Maas, cluster: str, system_id: str) -> WaitDeployedInput:
    return WaitDeployedInput(
        account=maas.account, cluster_id=cluster, system_id=system_id, poll_interval_seconds=POLL
    )


async def start_wait(client: Client, queue: str, activity: str, arg: object) -> WorkflowHandle:
    assert hasattr(arg, "model_dump")
    return await client.start_workflow(
        RunActivity.run,
        RunActivityInput(
            activity=activity,
            arg=arg.model_dump(mode="json"),
            task_queue=queue,
            heartbeat_seconds=5,
            start_to_close_seconds=120,
        ),
        id=f"test-wait-{uuid.uuid4()}",
        task_queue=queue,
    )


def machine_reads(requests: list[LoggedRequest]) -> list[LoggedRequest]:
    """Every request that reads machines: the list (filtered or not) or one machine."""
    return [
        r
        for r in requests
        if r.action == "read" and r.handler in ("MachinesHandler", "MachineHandler")
    ]


async def reads_after_one_covering(maas: Maas, since: int, ids: set[str], more: int) -> list:
    """The machine reads after the first one that asked for exactly `ids`, once `more` came."""

    async def check() -> list[LoggedRequest]:
        reads = machine_reads((await maas.requests(since)).requests)
        covering = [i for i, r in enumerate(reads) if set(r.query.get("id", [])) == ids]
        assert covering, f"no read asked MAAS for {sorted(ids)} at once"
        after = reads[covering[0] + 1 :]
        assert len(after) >= more
        return after

    return await assert_eventually(check, within=30)


async def test_reads_per_interval_do_not_grow_with_machines_deploying(
    client: Client, queue: str, start_maas: StartMaas, activities: MaasActivities
) -> None:
    maas = await start_maas(deploy_seconds=FOREVER)
    system_ids = await deploying(client, queue, maas, "c-many", 5)
    since = (await maas.requests()).total
    waits = [
        await start_wait(client, queue, WAIT_DEPLOYED, wait_input(maas, "c-many", s))
        for s in system_ids
    ]

    after = await reads_after_one_covering(maas, since, set(system_ids), more=4)

    # Once all five wait, each interval is one read of all five, never one per machine.
    for read in after:
        assert (read.handler, sorted(read.query["id"])) == (
            "MachinesHandler",
            sorted(system_ids),
        ), after

    # Cancelling one waiter leaves the others waiting, and the watcher drops its machine.
    await waits[0].cancel()
    rest = set(system_ids[1:])
    since = (await maas.requests()).total
    after = await reads_after_one_covering(maas, since, rest, more=2)
    assert all(set(r.query["id"]) == rest for r in after)
    for handle in waits[1:]:
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert activities.watcher.watched() == rest

    for handle in waits[1:]:
        await handle.cancel()

    async def nothing_watched() -> None:
        assert activities.watcher.watched() == set()

    await assert_eventually(nothing_watched)


async def test_a_machine_that_fails_deploy_fails_only_its_own_wait(
    client: Client, queue: str, start_maas: StartMaas
) -> None:
    maas = await start_maas(deploy_seconds=1.0)
    system_ids = await take(client, queue, maas, "c-fail", 4)
    failing = system_ids[0]
    await maas.set_faults(fail_machines=[failing])
    for system_id in system_ids:
        deploy = DeployMachineInput(
            account=maas.account,
            cluster_id="c-fail",
            system_id=system_id,
            distro_series="jammy",
            user_data="",
        )
        await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)

    failing_wait = activity_failure(
        client, queue, WAIT_DEPLOYED, wait_input(maas, "c-fail", failing), heartbeat_seconds=5
    )
    other_waits = [
        run_activity(
            client,
            queue,
            WAIT_DEPLOYED,
            wait_input(maas, "c-fail", s),
            WaitDeployedResult,
            heartbeat_seconds=5,
        )
        for s in system_ids[1:]
    ]
    failed, deployed = await asyncio.gather(failing_wait, asyncio.gather(*other_waits))

    assert failed.type == Reason.MACHINE_DEPLOY_FAILED.value
    assert failing in failed.message
    assert [d.machine.status for d in deployed] == ["Deployed"] * 3


async def test_releases_of_several_clusters_share_one_read(
    client: Client, queue: str, start_maas: StartMaas, activities: MaasActivities
) -> None:
    maas = await start_maas(release_seconds=FOREVER)
    held = {cluster: await take(client, queue, maas, cluster, 2) for cluster in ("ra", "rb")}
    for cluster, system_ids in held.items():
        # Erasing: a machine that was never switched on and needs no wipe is Ready at once.
        release = ReleaseMachinesInput(
            account=maas.account,
            cluster_id=cluster,
            system_ids=system_ids,
            erase_policy=ErasePolicy.QUICK,
        )
        await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)
    since = (await maas.requests()).total
    waits = [
        await start_wait(
            client,
            queue,
            WAIT_RELEASED,
            WaitReleasedInput(account=maas.account, cluster_id=c, poll_interval_seconds=POLL),
        )
        for c in held
    ]
    every = {s for ids in held.values() for s in ids}

    after = await reads_after_one_covering(maas, since, every, more=3)

    assert all(set(r.query["id"]) == every for r in after)
    for handle in waits:
        await handle.cancel()


async def test_a_released_cluster_waits_no_more(
    client: Client, queue: str, start_maas: StartMaas
) -> None:
    maas = await start_maas(release_seconds=0.5)
    system_ids = await take(client, queue, maas, "rc", 2)
    release = ReleaseMachinesInput(
        account=maas.account, cluster_id="rc", system_ids=system_ids, erase_policy=ErasePolicy.NONE
    )
    await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)
    wait = WaitReleasedInput(account=maas.account, cluster_id="rc", poll_interval_seconds=POLL)
    result = await run_activity(
        client, queue, WAIT_RELEASED, wait, WaitReleasedResult, heartbeat_seconds=5
    )
    assert result.stuck == []
    assert {m["status_name"] for m in await maas.machines()} == {"Ready"}


async def test_one_session_per_account_however_many_calls_arrive_together(maas: Maas) -> None:
    sessions = MaasSessions()
    since = (await maas.requests()).counts.get("describe.read", 0)

    await asyncio.gather(
        *(sessions.call(maas.account, "Version", "read", VERSION) for _ in range(8))
    )
    await asyncio.gather(
        *(sessions.call(maas.account, "Version", "read", VERSION) for _ in range(8))
    )

    assert (await maas.requests()).counts["describe.read"] - since == 1
