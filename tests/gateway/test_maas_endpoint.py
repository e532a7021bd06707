"""The endpoint activities against the real emulator, executed by a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities.maas import MaasActivities
from activities.models import (
    ACQUIRE_MACHINES,
    DEPLOY_MACHINE,
    ENSURE_ENDPOINT,
    FIND_OWNED_ENDPOINTS,
    REMOVE_ENDPOINT,
    AcquireMachinesInput,
    AcquireMachinesResult,
    DeployMachineInput,
    DeployMachineResult,
    EnsureEndpointInput,
    EnsureEndpointResult,
    FindOwnedEndpointsInput,
    FindOwnedEndpointsResult,
    RemoveEndpointInput,
    RemoveEndpointResult,
)
from domain.cluster import ControlPlaneEndpoint, EndpointMode, NodePool
from domain.maas import MaasAccount
from domain.naming import endpoint_record_name
from domain.phases import Reason
from tests.gateway.activity_runner import activity_failure, run_activity
from tests.gateway.conftest import Maas
from tests.gateway.harness import RunActivity
from tests.support.temporal import new_worker


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    worker = new_worker(client, RunActivity, activities=MaasActivities().all())
    async with worker:
        yield worker.task_queue


def ensure(account: MaasAccount, cluster: str, **endpoint: object) -> EnsureEndpointInput:
    return EnsureEndpointInput(
        account=account,
        cluster_id=cluster,
        endpoint=ControlPlaneEndpoint.model_validate(endpoint),
        control_plane_pool="cp",
    )


async def reserved(maas: Maas) -> list[str]:
    session = await maas.bones()
    return [a["ip"] for a in await session.IPAddresses.read()]


async def records(maas: Maas) -> dict[str, list[str]]:
    session = await maas.bones()
    return {
        r["fqdn"]: sorted(a["ip"] for a in r["ip_addresses"])
        for r in await session.DNSResources.read()
    }


async def test_vip_is_reserved_once_under_the_mark_and_removed(
    client: Client, queue: str, maas: Maas
) -> None:
    first = await run_activity(
        client, queue, ENSURE_ENDPOINT, ensure(maas.account, "c1"), EnsureEndpointResult
    )
    again = await run_activity(
        client, queue, ENSURE_ENDPOINT, ensure(maas.account, "c1"), EnsureEndpointResult
    )
    assert first.mode == EndpointMode.VIP and again.host == first.host
    assert first.host.startswith("10.20.")  # the machines' subnet
    machine_ips = {m["hostname"]: m for m in await maas.machines()}
    assert first.host not in {f"10.20.0.{10 + i}" for i in range(len(machine_ips))}
    assert await reserved(maas) == [first.host]
    assert (await records(maas)) == {f"{endpoint_record_name('c1')}.maas": [first.host]}

    other = await run_activity(
        client, queue, ENSURE_ENDPOINT, ensure(maas.account, "c2"), EnsureEndpointResult
    )
    assert other.host != first.host

    removed = await run_activity(
        client,
        queue,
        REMOVE_ENDPOINT,
        RemoveEndpointInput(account=maas.account, cluster_id="c1"),
        RemoveEndpointResult,
    )
    assert removed.released_ips == [first.host]
    assert await reserved(maas) == [other.host]
    assert f"{endpoint_record_name('c1')}.maas" not in await records(maas)
    empty = await run_activity(
        client,
        queue,
        REMOVE_ENDPOINT,
        RemoveEndpointInput(account=maas.account, cluster_id="c1"),
        RemoveEndpointResult,
    )
    assert empty == RemoveEndpointResult()


async def test_vip_at_the_address_the_spec_names(client: Client, queue: str, maas: Maas) -> None:
    result = await run_activity(
        client,
        queue,
        ENSURE_ENDPOINT,
        ensure(maas.account, "c1", mode="vip", address="10.20.77.1"),
        EnsureEndpointResult,
    )
    assert result.host == "10.20.77.1" and await reserved(maas) == ["10.20.77.1"]
    error = await activity_failure(
        client,
        queue,
        ENSURE_ENDPOINT,
        ensure(maas.account, "c2", mode="vip", address="10.20.77.1"),
    )
    assert error.type == Reason.ENDPOINT_UNAVAILABLE and error.non_retryable
    assert "10.20.77.1" in error.message and "control_plane_endpoint.address" in error.message
    outside = await activity_failure(
        client,
        queue,
        ENSURE_ENDPOINT,
        ensure(maas.account, "c3", mode="vip", address="192.168.9.9"),
    )
    assert outside.type == Reason.ENDPOINT_UNAVAILABLE and "No known subnet" in outside.message


async def test_dns_record_follows_the_control_plane_machines(
    client: Client, queue: str, maas: Maas
) -> None:
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c1",
            request_id="create",
            pools=[NodePool(name="cp", count=3), NodePool(name="workers", count=1)],
        ),
        AcquireMachinesResult,
    )
    before = await run_activity(
        client, queue, ENSURE_ENDPOINT, ensure(maas.account, "c1", mode="dns"), EnsureEndpointResult
    )
    fqdn = f"{endpoint_record_name('c1')}.maas"
    assert (before.host, before.addresses) == (fqdn, [])  # nothing deploys yet: no record
    assert fqdn not in await records(maas)

    deployed: list[str] = []
    for machine in acquired.machines:
        result = await run_activity(
            client,
            queue,
            DEPLOY_MACHINE,
            DeployMachineInput(
                account=maas.account,
                cluster_id="c1",
                system_id=machine.system_id,
                distro_series="jammy",
                user_data="#cloud-config\n",
            ),
            DeployMachineResult,
        )
        assert result.ip_addresses  # MAAS claims them when deployment starts
        if machine.pool == "cp":
            deployed += result.ip_addresses
        now = await run_activity(
            client,
            queue,
            ENSURE_ENDPOINT,
            ensure(maas.account, "c1", mode="dns"),
            EnsureEndpointResult,
        )
        assert now.addresses == sorted(deployed)
        if deployed:
            assert (await records(maas))[fqdn] == sorted(deployed)
    assert len(deployed) == 3
    assert await reserved(maas) == []  # dns mode reserves nothing

    # A control-plane node about to be drained for a repave: the name stops pointing at it.
    leaving = next(m for m in acquired.machines if m.pool == "cp")
    request = ensure(maas.account, "c1", mode="dns").model_copy(
        update={"leaving": [leaving.system_id]}
    )
    narrowed = await run_activity(client, queue, ENSURE_ENDPOINT, request, EnsureEndpointResult)
    [leaving_ip] = [ip for ip in deployed if ip not in narrowed.addresses]
    assert len(narrowed.addresses) == 2
    assert (await records(maas))[
        fqdn
    ] == narrowed.addresses and leaving_ip not in narrowed.addresses

    found = await run_activity(
        client,
        queue,
        FIND_OWNED_ENDPOINTS,
        FindOwnedEndpointsInput(account=maas.account),
        FindOwnedEndpointsResult,
    )
    assert [(e.cluster_id, e.fqdn, e.reserved_ips) for e in found.endpoints] == [("c1", fqdn, [])]
    removed = await run_activity(
        client,
        queue,
        REMOVE_ENDPOINT,
        RemoveEndpointInput(account=maas.account, cluster_id="c1"),
        RemoveEndpointResult,
    )
    assert removed.deleted_records == [fqdn] and removed.released_ips == []
    assert await records(maas) == {}


async def test_dns_mode_needs_an_admin_key_and_says_so(
    client: Client, queue: str, maas: Maas
) -> None:
    user = await maas.user_account("operator")
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=user, cluster_id="c1", request_id="create", pools=[NodePool(name="cp", count=1)]
        ),
        AcquireMachinesResult,
    )
    await run_activity(
        client,
        queue,
        DEPLOY_MACHINE,
        DeployMachineInput(
            account=user,
            cluster_id="c1",
            system_id=acquired.machines[0].system_id,
            distro_series="jammy",
            user_data="",
        ),
        DeployMachineResult,
    )
    error = await activity_failure(client, queue, ENSURE_ENDPOINT, ensure(user, "c1", mode="dns"))
    assert error.type == Reason.ENDPOINT_UNAVAILABLE and "admin" in error.message
    # vip mode works with the same key, and its removal too.
    vip = await run_activity(
        client, queue, ENSURE_ENDPOINT, ensure(user, "c1"), EnsureEndpointResult
    )
    await run_activity(
        client,
        queue,
        REMOVE_ENDPOINT,
        RemoveEndpointInput(account=user, cluster_id="c1"),
        RemoveEndpointResult,
    )
    assert vip.host not in await reserved(maas) and await records(maas) == {}


async def test_external_makes_nothing(client: Client, queue: str, maas: Maas) -> None:
    result = await run_activity(
        client,
        queue,
        ENSURE_ENDPOINT,
        ensure(maas.account, "c1", mode="external", address="lb.example.com"),
        EnsureEndpointResult,
    )
    assert result.host == "lb.example.com"
    assert await reserved(maas) == [] and await records(maas) == {}


async def test_deploy_of_an_unknown_image_is_refused(
    client: Client, queue: str, maas: Maas
) -> None:
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c1",
            request_id="r",
            pools=[NodePool(name="cp", count=2)],
        ),
        AcquireMachinesResult,
    )
    [one, two] = acquired.machines
    error = await activity_failure(
        client,
        queue,
        DEPLOY_MACHINE,
        DeployMachineInput(
            account=maas.account,
            cluster_id="c1",
            system_id=one.system_id,
            osystem="custom",
            distro_series="no-such-image",
            user_data="",
        ),
    )
    assert "no-such-image" in error.message and error.non_retryable
    custom = await run_activity(
        client,
        queue,
        DEPLOY_MACHINE,
        DeployMachineInput(
            account=maas.account,
            cluster_id="c1",
            system_id=two.system_id,
            osystem="custom",
            distro_series="metalgate-k8s",
            user_data="",
        ),
        DeployMachineResult,
    )
    assert custom.status == "Deploying"
    raw = await maas.by_hostname(two.hostname)
    assert (raw["osystem"], raw["distro_series"]) == ("custom", "metalgate-k8s")


async def test_concurrent_dns_ensures_converge(client: Client, queue: str, maas: Maas) -> None:
    """Control-plane nodes deploy in parallel, each followed by an ensure: one creates the
    record, the others find it made under them and update it."""
    acquired = await run_activity(
        client,
        queue,
        ACQUIRE_MACHINES,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c1",
            request_id="create",
            pools=[NodePool(name="cp", count=3)],
        ),
        AcquireMachinesResult,
    )
    for machine in acquired.machines:
        await run_activity(
            client,
            queue,
            DEPLOY_MACHINE,
            DeployMachineInput(
                account=maas.account,
                cluster_id="c1",
                system_id=machine.system_id,
                distro_series="jammy",
                user_data="",
            ),
            DeployMachineResult,
        )
    results = await asyncio.gather(
        *(
            run_activity(
                client,
                queue,
                ENSURE_ENDPOINT,
                ensure(maas.account, "c1", mode="dns"),
                EnsureEndpointResult,
            )
            for _ in range(4)
        )
    )
    [addresses] = {tuple(r.addresses) for r in results}
    assert len(addresses) == 3
    assert await records(maas) == {f"{endpoint_record_name('c1')}.maas": list(addresses)}
