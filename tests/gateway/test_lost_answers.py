"""MAAS applies an operation but its answer is lost (a 503 or a cut connection): the
activities, retried as Temporal retries them, end with exactly what was asked, no surplus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities.maas import MaasActivities
from activities.models import (
    ACQUIRE_MACHINES,
    DEPLOY_MACHINE,
    RELEASE_MACHINES,
    AcquireMachinesInput,
    AcquireMachinesResult,
    DeployMachineInput,
    DeployMachineResult,
    ReleaseMachinesInput,
    ReleaseMachinesResult,
)
from domain.cluster import MachineConstraints, NodePool
from tests.gateway.activity_runner import run_activity
from tests.gateway.conftest import Maas
from tests.gateway.harness import RunActivity
from tests.support.temporal import new_worker

SMALL = MachineConstraints(min_cpu=2, min_memory_mib=4096)


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    worker = new_worker(client, RunActivity, activities=MaasActivities().all())
    async with worker:
        yield worker.task_queue


async def test_lost_answers_leave_exactly_what_was_asked(
    client: Client, queue: str, maas: Maas
) -> None:
    await maas.set_faults(lost_answer_rate=0.4)
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c-lost",
            request_id="create",
            pools=[NodePool(name="workers", count=3, constraints=SMALL)],
        ),
        AcquireMachinesResult,
        max_attempts=30,
    )
    ids = sorted(m.system_id for m in acquired.machines)
    await maas.set_faults(lost_answer_rate=0.0)
    allocated = sorted(m["system_id"] for m in await maas.machines() if m["owner"])
    # Before lost answers were adopted or fenced, a retried allocate could add one more.
    assert allocated == ids
    marks = {m["system_id"]: (m.get("owner_data") or {}) for m in await maas.machines()}
    assert all(marks[s].get("metalgate_cluster") == "c-lost" for s in ids)

    await maas.set_faults(lost_answer_rate=0.5)
    for system_id in ids:
        deployed = await run_activity(
            client,
            queue,
            DEPLOY_MACHINE,
            DeployMachineInput(
                account=maas.account,
                cluster_id="c-lost",
                system_id=system_id,
                distro_series="jammy",
                user_data="#cloud-config\n",
            ),
            DeployMachineResult,
            max_attempts=30,
        )
        assert deployed.status in ("Deploying", "Deployed")
    await run_activity(
        client,
        queue,
        RELEASE_MACHINES,
        ReleaseMachinesInput(account=maas.account, cluster_id="c-lost", system_ids=ids),
        ReleaseMachinesResult,
        max_attempts=30,
    )
    await maas.set_faults(lost_answer_rate=0.0)
    states = {m["system_id"]: m["status_name"] for m in await maas.machines()}
    assert all(states[s] in ("Releasing", "Disk erasing", "Ready") for s in ids), states
