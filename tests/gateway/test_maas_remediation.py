"""The remediation ladder's MAAS steps against the real emulator, run by a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities.maas import MaasActivities
from activities.maas_remediation import RemediationActivities
from activities.maas_session import MaasSessions
from activities.models import (
    ACQUIRE_MACHINES,
    DEPLOY_MACHINE,
    WAIT_DEPLOYED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    DeployMachineInput,
    DeployMachineResult,
    WaitDeployedInput,
    WaitDeployedResult,
)
from activities.remediation_models import (
    POWER_CYCLE_MACHINE,
    QUARANTINE_MACHINE,
    RELEASE_FOR_REDEPLOY,
    RemediateMachineInput,
    RemediateMachineResult,
)
from domain.cluster import NodePool
from domain.naming import OWNER_DATA_CLUSTER, OWNER_DATA_POOL, QUARANTINE_TAG
from domain.phases import Reason
from tests.gateway.activity_runner import activity_failure, run_activity
from tests.gateway.conftest import Maas
from tests.gateway.harness import RunActivity
from tests.support.temporal import new_worker


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    sessions = MaasSessions()
    activities = [*MaasActivities(sessions).all(), *RemediationActivities(sessions).all()]
    async with new_worker(client, RunActivity, activities=activities) as worker:
        yield worker.task_queue


async def deployed(client: Client, queue: str, maas: Maas, cluster: str) -> str:
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id=cluster,
            request_id="create",
            pools=[NodePool(name="workers", count=1)],
        ),
        AcquireMachinesResult,
    )
    system_id = acquired.machines[0].system_id
    await run_activity(
        client,
        queue,
        DEPLOY_MACHINE,
        DeployMachineInput(
            account=maas.account,
            cluster_id=cluster,
            system_id=system_id,
            distro_series="jammy",
            user_data="#cloud-config\n",
        ),
        DeployMachineResult,
    )
    wait = WaitDeployedInput(
        account=maas.account, cluster_id=cluster, system_id=system_id, poll_interval_seconds=0.1
    )
    await run_activity(client, queue, WAIT_DEPLOYED, wait, WaitDeployedResult)
    return system_id


def step(maas: Maas, cluster: str, system_id: str) -> RemediateMachineInput:
    return RemediateMachineInput(
        account=maas.account,
        cluster_id=cluster,
        system_id=system_id,
        pool="workers",
        reason="NotReady for 300s",
        poll_interval_seconds=0.1,
    )


async def events(maas: Maas, system_id: str) -> list[str]:
    session = await maas.bones()
    answer = await session.Events.query(id=[system_id])
    return [e["type"] for e in answer["events"]]


async def test_power_cycle_turns_the_machine_off_and_on(
    client: Client, queue: str, maas: Maas
) -> None:
    system_id = await deployed(client, queue, maas, "c1")
    done = await run_activity(
        client, queue, POWER_CYCLE_MACHINE, step(maas, "c1", system_id), RemediateMachineResult
    )
    assert done.detail == "powered off and on"
    kinds = await events(maas, system_id)
    assert "Powering off" in kinds and "Powering on" in kinds
    machine = next(m for m in await maas.machines() if m["system_id"] == system_id)
    assert machine["status_name"] == "Deployed" and machine["power_state"] == "on"


async def test_steps_leave_a_machine_of_another_cluster_alone(
    client: Client, queue: str, maas: Maas
) -> None:
    system_id = await deployed(client, queue, maas, "c2")
    failure = await activity_failure(
        client, queue, POWER_CYCLE_MACHINE, step(maas, "other", system_id)
    )
    assert failure.type == Reason.MACHINE_DEPLOY_FAILED.value and "left alone" in failure.message
    assert "Powering off" not in await events(maas, system_id)


async def test_release_for_redeploy_gives_the_same_machine_back_with_the_marks(
    client: Client, queue: str, maas: Maas
) -> None:
    system_id = await deployed(client, queue, maas, "c3")
    await run_activity(
        client, queue, RELEASE_FOR_REDEPLOY, step(maas, "c3", system_id), RemediateMachineResult
    )
    machine = next(m for m in await maas.machines() if m["system_id"] == system_id)
    assert machine["status_name"] == "Allocated"
    assert machine["owner_data"][OWNER_DATA_CLUSTER] == "c3"
    assert machine["owner_data"][OWNER_DATA_POOL] == "workers"
    # The usual deploy follows, as for a fresh machine.
    again = await run_activity(
        client,
        queue,
        DEPLOY_MACHINE,
        DeployMachineInput(
            account=maas.account,
            cluster_id="c3",
            system_id=system_id,
            distro_series="jammy",
            user_data="#cloud-config\n",
        ),
        DeployMachineResult,
    )
    assert again.status in ("Deploying", "Deployed")


async def test_quarantine_tags_the_machine(client: Client, queue: str, maas: Maas) -> None:
    system_id = await deployed(client, queue, maas, "c4")
    done = await run_activity(
        client, queue, QUARANTINE_MACHINE, step(maas, "c4", system_id), RemediateMachineResult
    )
    assert QUARANTINE_TAG in done.detail
    machine = next(m for m in await maas.machines() if m["system_id"] == system_id)
    assert QUARANTINE_TAG in machine["tag_names"]
