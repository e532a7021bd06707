"""Each MAAS activity against the real emulator, executed by a real worker on a dev server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities.maas import MaasActivities
from activities.models import (
    ACQUIRE_MACHINES,
    CHECK_ACCOUNT,
    DEPLOY_MACHINE,
    FIND_OWNED,
    RELEASE_MACHINES,
    WAIT_DEPLOYED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    CheckAccountInput,
    CheckAccountResult,
    DeployMachineInput,
    DeployMachineResult,
    FindOwnedInput,
    FindOwnedResult,
    ReleaseMachinesInput,
    ReleaseMachinesResult,
    WaitDeployedInput,
    WaitDeployedResult,
)
from domain.cluster import ErasePolicy, MachineConstraints, NodePool
from domain.maas import MaasAccount
from domain.naming import (
    OWNER_DATA_CLUSTER,
    OWNER_DATA_POOL,
    OWNER_DATA_REQUEST,
    QUARANTINE_TAG,
    owner_agent_name,
)
from domain.phases import Reason
from tests.gateway.activity_runner import activity_failure, run_activity
from tests.gateway.conftest import Maas
from tests.gateway.harness import RunActivity
from tests.support.ports import free_port
from tests.support.temporal import new_worker

SMALL = MachineConstraints(min_cpu=2, min_memory_mib=4096)
GPU = MachineConstraints(tags=["gpu"], zones=["zone-a"], resource_pool="gpu", min_cpu=16)


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    """A worker with the MAAS activities and the harness workflow on a fresh queue."""
    worker = new_worker(client, RunActivity, activities=MaasActivities().all())
    async with worker:
        yield worker.task_queue


def acquire(maas: Maas, cluster: str, request: str, *pools: NodePool) -> AcquireMachinesInput:
    return AcquireMachinesInput(
        account=maas.account, cluster_id=cluster, request_id=request, pools=list(pools)
    )


async def allocated(maas: Maas) -> list[dict]:
    return [m for m in await maas.machines() if m["status_name"] != "Ready"]


# --- check account ---------------------------------------------------------------------------


async def test_check_account_describes_maas(client: Client, queue: str, maas: Maas) -> None:
    result = await run_activity(
        client, queue, CHECK_ACCOUNT, CheckAccountInput(account=maas.account), CheckAccountResult
    )
    assert result.maas_version
    assert "zone-a" in result.zones
    assert result.resource_pools == ["default", "gpu"]
    assert {"gpu", "ssd"} <= set(result.tags)
    assert (result.machines, result.ready_machines) == (8, 8)


async def test_check_account_bad_key_is_non_retryable_auth_failure(
    client: Client, queue: str, maas: Maas
) -> None:
    bad = MaasAccount(url=maas.url, api_key="aaa:bbb:ccc")
    error = await activity_failure(
        client, queue, CHECK_ACCOUNT, CheckAccountInput(account=bad), max_attempts=5
    )
    assert error.type == Reason.MAAS_AUTH_FAILED
    assert error.non_retryable
    assert "ccc" not in error.message


async def test_check_account_unreachable_is_retryable(client: Client, queue: str) -> None:
    nowhere = MaasAccount(url=f"http://127.0.0.1:{free_port()}/MAAS/", api_key="a:b:secret")
    error = await activity_failure(
        client, queue, CHECK_ACCOUNT, CheckAccountInput(account=nowhere), max_attempts=2
    )
    assert error.type == Reason.MAAS_UNREACHABLE
    assert not error.non_retryable
    assert "secret" not in error.message


# --- acquire ---------------------------------------------------------------------------------


async def test_acquire_marks_ownership_and_is_idempotent(
    client: Client, queue: str, maas: Maas
) -> None:
    request = acquire(
        maas,
        "c1",
        "r1",
        NodePool(name="cp", count=1, constraints=SMALL),
        NodePool(name="gpus", count=2, constraints=GPU),
    )
    first = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)
    again = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)

    assert sorted(m.pool for m in first.machines) == ["cp", "gpus", "gpus"]
    assert {m.system_id for m in again.machines} == {m.system_id for m in first.machines}
    taken = await allocated(maas)
    assert len(taken) == 3
    for raw in taken:
        assert raw["owner_data"][OWNER_DATA_CLUSTER] == "c1"
        assert raw["owner_data"][OWNER_DATA_REQUEST] == "r1"
    gpu_hosts = {m["hostname"] for m in taken if m["owner_data"][OWNER_DATA_POOL] == "gpus"}
    assert gpu_hosts == {"gpu01", "gpu02"}


async def test_acquire_adopts_allocation_lost_in_a_crash(
    client: Client, queue: str, maas: Maas
) -> None:
    # The lost attempt: MAAS allocated with our agent_name, the worker died before owner_data.
    session = await maas.bones()
    lost = await session.Machines.allocate(
        agent_name=owner_agent_name("c2"), cpu_count="2", comment="metalgate cluster c2"
    )
    request = acquire(maas, "c2", "r1", NodePool(name="workers", count=2, constraints=SMALL))

    result = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)

    assert lost["system_id"] in {m.system_id for m in result.machines}
    taken = await allocated(maas)
    assert len(taken) == 2, "one adopted plus one new: the lost allocation is not repeated"
    adopted = next(m for m in taken if m["system_id"] == lost["system_id"])
    assert adopted["owner_data"][OWNER_DATA_REQUEST] == "r1"
    assert adopted["owner_data"][OWNER_DATA_POOL] == "workers"


async def test_acquire_shortfall_takes_nothing(client: Client, queue: str, maas: Maas) -> None:
    request = acquire(
        maas,
        "c3",
        "r1",
        NodePool(name="cp", count=1, constraints=SMALL),
        NodePool(name="gpus", count=3, constraints=GPU),
    )
    error = await activity_failure(client, queue, ACQUIRE_MACHINES, request)

    assert error.type == Reason.INSUFFICIENT_CAPACITY
    assert error.non_retryable
    assert "'gpus' asks 3" in error.message and "has 2 available" in error.message
    assert await allocated(maas) == []


async def test_acquire_unknown_tag_is_invalid_constraints(
    client: Client, queue: str, maas: Maas
) -> None:
    bad = MachineConstraints(tags=["no-such-tag"])
    request = acquire(maas, "c4", "r1", NodePool(name="cp", count=1, constraints=bad))
    error = await activity_failure(client, queue, ACQUIRE_MACHINES, request)

    assert error.type == Reason.INVALID_CONSTRAINTS
    assert "no-such-tag" in error.message
    assert await allocated(maas) == []


async def test_acquire_skips_excluded_and_quarantined(
    client: Client, queue: str, maas: Maas
) -> None:
    session = await maas.bones()
    await session.Tags.create(name=QUARANTINE_TAG)
    gpu01 = await maas.by_hostname("gpu01")
    gpu02 = await maas.by_hostname("gpu02")
    await session.Tag.update_nodes(name=QUARANTINE_TAG, add=[gpu01["system_id"]])
    request = acquire(maas, "c5", "r1", NodePool(name="gpus", count=1, constraints=GPU))

    blocked = request.model_copy(update={"exclude_system_ids": [gpu02["system_id"]]})
    error = await activity_failure(client, queue, ACQUIRE_MACHINES, blocked)
    assert error.type == Reason.INSUFFICIENT_CAPACITY

    result = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)
    assert [m.hostname for m in result.machines] == ["gpu02"]


# --- deploy, wait, quarantine ----------------------------------------------------------------


async def _one_machine(client: Client, queue: str, maas: Maas, cluster: str) -> str:
    request = acquire(maas, cluster, "r1", NodePool(name="cp", count=1, constraints=SMALL))
    result = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)
    return result.machines[0].system_id


async def test_deploy_and_wait_deployed(client: Client, queue: str, maas: Maas) -> None:
    system_id = await _one_machine(client, queue, maas, "c6")
    deploy = DeployMachineInput(
        account=maas.account,
        cluster_id="c6",
        system_id=system_id,
        distro_series="jammy",
        user_data="#cloud-config\nruncmd: [echo hi]\n",
    )
    started = await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)
    repeated = await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)
    assert started.status == "Deploying"
    assert repeated.status in ("Deploying", "Deployed")

    wait = WaitDeployedInput(
        account=maas.account, cluster_id="c6", system_id=system_id, poll_interval_seconds=0.1
    )
    done = await run_activity(
        client, queue, WAIT_DEPLOYED, wait, WaitDeployedResult, heartbeat_seconds=5
    )
    assert done.machine.status == "Deployed"
    assert done.machine.ip_addresses
    assert done.machine.pool == "cp"


async def test_failed_deploy_quarantines_machine(client: Client, queue: str, maas: Maas) -> None:
    system_id = await _one_machine(client, queue, maas, "c7")
    await maas.set_faults(fail_machines=[system_id])
    deploy = DeployMachineInput(
        account=maas.account,
        cluster_id="c7",
        system_id=system_id,
        distro_series="jammy",
        user_data="#cloud-config\n",
    )
    await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)
    wait = WaitDeployedInput(
        account=maas.account, cluster_id="c7", system_id=system_id, poll_interval_seconds=0.1
    )
    error = await activity_failure(client, queue, WAIT_DEPLOYED, wait, heartbeat_seconds=5)

    assert error.type == Reason.MACHINE_DEPLOY_FAILED
    assert error.non_retryable
    raw = next(m for m in await maas.machines() if m["system_id"] == system_id)
    assert QUARANTINE_TAG in raw["tag_names"]

    # Released by the saga's compensation, it is still never handed out again.
    release = ReleaseMachinesInput(
        account=maas.account,
        cluster_id="c7",
        system_ids=[system_id],
        erase_policy=ErasePolicy.NONE,
    )
    await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)
    everything = acquire(maas, "c8", "r1", NodePool(name="all", count=7, constraints=SMALL))
    result = await run_activity(client, queue, ACQUIRE_MACHINES, everything, AcquireMachinesResult)
    assert system_id not in {m.system_id for m in result.machines}


async def test_failed_deploy_with_non_admin_key_marks_machine_broken(
    client: Client, queue: str, maas: Maas
) -> None:
    user = await maas.user_account("operator")
    request = AcquireMachinesInput(
        account=user,
        cluster_id="c10",
        request_id="r1",
        pools=[NodePool(name="cp", count=1, constraints=SMALL)],
    )
    result = await run_activity(client, queue, ACQUIRE_MACHINES, request, AcquireMachinesResult)
    system_id = result.machines[0].system_id
    await maas.set_faults(fail_machines=[system_id])
    deploy = DeployMachineInput(
        account=user, cluster_id="c10", system_id=system_id, distro_series="jammy", user_data=""
    )
    await run_activity(client, queue, DEPLOY_MACHINE, deploy, DeployMachineResult)
    wait = WaitDeployedInput(
        account=user, cluster_id="c10", system_id=system_id, poll_interval_seconds=0.1
    )
    error = await activity_failure(client, queue, WAIT_DEPLOYED, wait)

    assert error.type == Reason.MACHINE_DEPLOY_FAILED
    assert "marked broken" in error.message
    raw = next(m for m in await maas.machines() if m["system_id"] == system_id)
    assert raw["status_name"] == "Broken"


async def test_maas_server_errors_are_retryable_unreachable(
    client: Client, queue: str, maas: Maas
) -> None:
    await maas.set_faults(http_503_rate=1.0)
    error = await activity_failure(
        client, queue, CHECK_ACCOUNT, CheckAccountInput(account=maas.account), max_attempts=2
    )
    assert error.type == Reason.MAAS_UNREACHABLE
    assert not error.non_retryable
    assert "503" in error.message


# --- release ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(ErasePolicy))
async def test_release_twice_and_unknown_ids_are_fine(
    client: Client, queue: str, maas: Maas, policy: ErasePolicy
) -> None:
    system_id = await _one_machine(client, queue, maas, "c9")
    release = ReleaseMachinesInput(
        account=maas.account,
        cluster_id="c9",
        system_ids=[system_id, "gone42"],
        erase_policy=policy,
    )
    first = await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)
    second = await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)

    assert first.released == [system_id]
    assert first.already_free == ["gone42"]
    assert second.released == []
    assert sorted(second.already_free) == sorted([system_id, "gone42"])
    raw = next(m for m in await maas.machines() if m["system_id"] == system_id)
    expected = "Releasing" if policy is ErasePolicy.NONE else "Disk erasing"
    assert raw["status_name"] in (expected, "Ready")


async def test_release_never_touches_another_clusters_machine(
    client: Client, queue: str, maas: Maas
) -> None:
    theirs = await _one_machine(client, queue, maas, "other")
    release = ReleaseMachinesInput(account=maas.account, cluster_id="mine", system_ids=[theirs])
    result = await run_activity(client, queue, RELEASE_MACHINES, release, ReleaseMachinesResult)

    assert result.already_free == [theirs]
    raw = next(m for m in await maas.machines() if m["system_id"] == theirs)
    assert raw["status_name"] == "Allocated"


# --- find owned ------------------------------------------------------------------------------


async def test_find_owned_by_cluster_and_everywhere(client: Client, queue: str, maas: Maas) -> None:
    a = await _one_machine(client, queue, maas, "ca")
    b = await _one_machine(client, queue, maas, "cb")
    session = await maas.bones()
    unmarked = await session.Machines.allocate(agent_name=owner_agent_name("cc"), cpu_count="2")

    mine = await run_activity(
        client,
        queue,
        FIND_OWNED,
        FindOwnedInput(account=maas.account, cluster_id="ca"),
        FindOwnedResult,
    )
    assert [(m.system_id, m.cluster_id, m.pool) for m in mine.machines] == [(a, "ca", "cp")]

    every = await run_activity(
        client, queue, FIND_OWNED, FindOwnedInput(account=maas.account), FindOwnedResult
    )
    found = {m.system_id: m.cluster_id for m in every.machines}
    assert found == {a: "ca", b: "cb", unmarked["system_id"]: ""}


async def test_find_owned_for_cluster_with_nothing(client: Client, queue: str, maas: Maas) -> None:
    result = await run_activity(
        client,
        queue,
        FIND_OWNED,
        FindOwnedInput(account=maas.account, cluster_id=f"none-{uuid.uuid4()}"),
        FindOwnedResult,
    )
    assert result.machines == []
