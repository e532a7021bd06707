"""Failure domains against the real emulator: acquire spreads a pool over its MAAS zones."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.maas import MaasActivities
from activities.models import AcquireMachinesInput, AcquireMachinesResult
from domain.cluster import MachineConstraints, NodePool
from domain.phases import Reason
from maas_emulator.inventory import Inventory, MachineSpec
from tests.gateway.conftest import Maas, StartMaas

ZONES = ["az1", "az2", "az3"]
# Three machines in az1 and in az2, one in az3, one in a zone no pool lists.
INVENTORY = Inventory(
    zones=["default", *ZONES],
    machines=[
        *(MachineSpec(hostname=f"a{i}", zone="az1") for i in (1, 2, 3)),
        *(MachineSpec(hostname=f"b{i}", zone="az2") for i in (1, 2, 3)),
        MachineSpec(hostname="c1", zone="az3"),
        MachineSpec(hostname="d1", zone="default"),
    ],
)
SPREAD = MachineConstraints(zones=ZONES)


@pytest.fixture
async def maas(start_maas: StartMaas) -> Maas:
    return await start_maas(inventory=INVENTORY)


def env(activity_id: str = "1") -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, activity_id=activity_id, heartbeat_timeout=None
    )
    return environment


async def acquire(
    maas: Maas, request: str, *pools: NodePool, replacing: list[str] | None = None
) -> AcquireMachinesResult:
    return await env().run(
        MaasActivities().acquire_machines,
        AcquireMachinesInput(
            account=maas.account,
            cluster_id="c-zones",
            request_id=request,
            pools=list(pools),
            replacing=replacing or [],
        ),
    )


def zones_of(result: AcquireMachinesResult, pool: str) -> Counter[str]:
    return Counter(m.zone for m in result.machines if m.pool == pool)


async def test_control_plane_nodes_never_share_a_zone_while_another_has_room(maas: Maas) -> None:
    result = await acquire(maas, "create", NodePool(name="cp", count=3, constraints=SPREAD))
    assert zones_of(result, "cp") == {"az1": 1, "az2": 1, "az3": 1}
    assert result.notes == []


async def test_workers_balance_and_a_full_zone_falls_back_with_a_note(maas: Maas) -> None:
    result = await acquire(maas, "create", NodePool(name="workers", count=6, constraints=SPREAD))
    # az3 has one machine: its second share goes to the zone listed first.
    assert zones_of(result, "workers") == {"az1": 3, "az2": 2, "az3": 1}
    assert result.notes == [
        "pool workers: no free matching machine in zone az3, so its share went to the other "
        "zones (az1: 3, az2: 2, az3: 1)"
    ]
    # The allocations named the picked machine's zone, as MAAS's allocate takes one zone.
    raw = {m["system_id"]: m for m in await maas.machines()}
    assert all(raw[m.system_id]["zone"]["name"] == m.zone for m in result.machines)


async def test_control_plane_and_workers_together(maas: Maas) -> None:
    result = await acquire(
        maas,
        "create",
        NodePool(name="cp", count=3, constraints=SPREAD),
        NodePool(name="workers", count=3, constraints=SPREAD),
    )
    assert zones_of(result, "cp") == {"az1": 1, "az2": 1, "az3": 1}
    assert zones_of(result, "workers") == {"az1": 2, "az2": 1}
    assert len(result.notes) == 1 and "pool workers" in result.notes[0]


async def test_a_scale_up_counts_what_each_zone_already_holds(maas: Maas) -> None:
    workers = NodePool(name="workers", count=2, constraints=SPREAD)
    first = await acquire(maas, "create", workers)
    assert zones_of(first, "workers") == {"az1": 1, "az2": 1}
    more = await acquire(maas, "scale-1", workers.model_copy(update={"count": 1}))
    assert zones_of(more, "workers") == {"az3": 1}
    again = await acquire(maas, "scale-2", workers.model_copy(update={"count": 2}))
    assert zones_of(again, "workers") == {"az1": 1, "az2": 1}
    # A retry of a request answers what it took, without taking more.
    retried = await acquire(maas, "scale-2", workers.model_copy(update={"count": 2}))
    assert {m.system_id for m in retried.machines} == {m.system_id for m in again.machines}


async def test_a_replacement_goes_to_the_zone_the_leaving_machine_frees(maas: Maas) -> None:
    cp = NodePool(name="cp", count=3, constraints=SPREAD)
    first = await acquire(maas, "create", cp)
    leaving = next(m for m in first.machines if m.zone == "az2")
    fresh = await acquire(
        maas, "replace-1", cp.model_copy(update={"count": 1}), replacing=[leaving.system_id]
    )
    assert [m.zone for m in fresh.machines] == ["az2"]


async def test_a_pool_without_zones_takes_any_zone(maas: Maas) -> None:
    result = await acquire(maas, "create", NodePool(name="workers", count=8))
    assert sum(zones_of(result, "workers").values()) == 8 and result.notes == []


async def test_an_unknown_zone_names_the_zones_maas_has(maas: Maas) -> None:
    bad = MachineConstraints(zones=["az1", "az9"])
    with pytest.raises(ApplicationError) as failure:
        await acquire(maas, "create", NodePool(name="workers", count=1, constraints=bad))
    assert failure.value.type == Reason.INVALID_CONSTRAINTS and failure.value.non_retryable
    assert "no zone az9" in failure.value.message and "az1, az2, az3, default" in str(failure.value)
    assert not [m for m in await maas.machines() if m["status_name"] != "Ready"]


async def test_too_few_machines_in_the_listed_zones_takes_nothing(maas: Maas) -> None:
    only = MachineConstraints(zones=["az3"])
    with pytest.raises(ApplicationError) as failure:
        await acquire(maas, "create", NodePool(name="workers", count=2, constraints=only))
    assert failure.value.type == Reason.INSUFFICIENT_CAPACITY
    assert "zone=az3" in failure.value.message
    assert not [m for m in await maas.machines() if m["status_name"] != "Ready"]
