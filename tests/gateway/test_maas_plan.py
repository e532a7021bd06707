"""Plan before acting: the ClusterPlan workflow on a dev server, its activity on a gateway
worker against the real emulator. A plan answers per pool and never allocates."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import ActivityEnvironment

from activities.maas import MaasActivities
from activities.models import AcquireMachinesInput
from domain.capacity_plan import CapacityPlan
from domain.cluster import MachineConstraints, NodePool
from domain.lifecycle import GatewayRef
from domain.naming import PLAN_WORKFLOW, gateway_queue
from domain.phases import Reason
from maas_emulator.inventory import Inventory, MachineSpec
from tests.gateway.conftest import Maas, StartMaas
from tests.support.temporal import new_worker
from workflows.contracts import PlanClusterInput
from workflows.plan import ClusterPlan

pytestmark = pytest.mark.timeout(90)

# One GPU machine in az1, two in az2, three plain ones in az1.
ZONES = Inventory(
    zones=["default", "az1", "az2"],
    tags=["gpu"],
    machines=[
        MachineSpec(hostname="gpu-a1", zone="az1", tags=["gpu"], cpu_count=8, memory=16384),
        *(
            MachineSpec(hostname=f"gpu-b{i}", zone="az2", tags=["gpu"], cpu_count=8, memory=16384)
            for i in (1, 2)
        ),
        *(
            MachineSpec(hostname=f"plain{i}", zone="az1", cpu_count=4, memory=8192)
            for i in (1, 2, 3)
        ),
    ],
)
CONTROL_PLANE = NodePool(
    name="control-plane", count=1, constraints=MachineConstraints(not_tags=["gpu"])
)


@pytest.fixture
async def zoned(start_maas: StartMaas) -> Maas:
    return await start_maas(inventory=ZONES)


@pytest.fixture
async def gateway(client: Client) -> AsyncIterator[GatewayRef]:
    ref = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="plan-test")
    async with new_worker(
        client, task_queue=gateway_queue(ref.id), activities=MaasActivities().all()
    ):
        yield ref


async def _plan(
    client: Client,
    maas: Maas,
    gateway: GatewayRef,
    pools: list[NodePool],
    wait: float = 10.0,
    cluster_id: str | None = None,
) -> CapacityPlan:
    async with new_worker(client, ClusterPlan) as worker:
        return await client.execute_workflow(
            PLAN_WORKFLOW,
            PlanClusterInput(
                account=maas.account,
                gateway=gateway,
                pools=pools,
                wait_seconds=wait,
                cluster_id=cluster_id,
            ),
            id=f"test-plan-{uuid.uuid4()}",
            task_queue=worker.task_queue,
            result_type=CapacityPlan,
            execution_timeout=timedelta(seconds=60),
        )


async def _nothing_allocated(maas: Maas) -> None:
    """The emulator's own record: every machine still Ready and unowned, no Allocated event."""
    machines = await maas.machines()
    assert {m["status_name"] for m in machines} == {"Ready"}
    assert all(not m["owner"] for m in machines)
    session = await maas.bones()
    events = (await session.Events.query())["events"]
    assert not [e for e in events if "Allocated" in e["description"]]


async def test_satisfiable_spec_lists_what_would_be_taken(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    workers = NodePool(name="workers", count=3, constraints=MachineConstraints(tags=["gpu"]))
    plan = await _plan(client, zoned, gateway, [CONTROL_PLANE, workers])
    assert plan.satisfiable, plan.summary
    by_pool = {p.pool: p for p in plan.pools}
    assert sorted(m.hostname for m in by_pool["workers"].would_take) == [
        "gpu-a1",
        "gpu-b1",
        "gpu-b2",
    ]
    assert [(z.zone, z.machines) for z in by_pool["workers"].by_zone] == [("az1", 1), ("az2", 2)]
    assert by_pool["control-plane"].would_take[0].hostname.startswith("plain")
    await _nothing_allocated(zoned)


async def test_unsatisfiable_spec_names_the_failing_constraint(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    workers = NodePool(
        name="workers", count=3, constraints=MachineConstraints(tags=["gpu"], zones=["az1"])
    )
    plan = await _plan(client, zoned, gateway, [CONTROL_PLANE, workers])
    assert not plan.satisfiable
    answer = next(p for p in plan.pools if p.pool == "workers")
    assert (answer.asked, answer.matching, answer.would_take) == (3, 1, [])
    zone = next(r for r in answer.relaxations if r.constraint == "zone=az1")
    assert [(z.zone, z.machines) for z in zone.by_zone] == [("az2", 2)]
    assert "workers: 3 asked, 1 Ready machine(s) match" in answer.summary
    assert "2 more without zone=az1 (2 in zone az2)" in answer.summary
    assert answer.summary in plan.summary
    await _nothing_allocated(zoned)


async def test_a_plan_spreads_over_zones_and_names_a_zone_without_room(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    gpus = NodePool(
        name="gpus", count=3, constraints=MachineConstraints(tags=["gpu"], zones=["az1", "az2"])
    )
    # The plain machines are all in az1: az2's share of this pool goes there.
    plain = NodePool(
        name="plain",
        count=2,
        constraints=MachineConstraints(not_tags=["gpu"], zones=["az2", "az1"]),
    )
    plan = await _plan(client, zoned, gateway, [gpus, plain])
    assert plan.satisfiable, plan.summary
    by_pool = {p.pool: p for p in plan.pools}
    assert [m.zone for m in by_pool["gpus"].would_take] == ["az1", "az2", "az2"]
    assert not by_pool["gpus"].note  # as balanced as three machines in two zones can be
    assert [m.zone for m in by_pool["plain"].would_take] == ["az1", "az1"]
    assert by_pool["plain"].note == (
        "pool plain: no free matching machine in zone az2, so its share went to the other "
        "zones (az2: 0, az1: 2)"
    )
    assert "zones=az2,az1" in by_pool["plain"].summary
    assert by_pool["plain"].note in by_pool["plain"].summary
    await _nothing_allocated(zoned)


async def test_a_scale_up_plan_counts_the_clusters_machines_per_zone(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    gpus = MachineConstraints(tags=["gpu"], zones=["az2", "az1"])
    workers = NodePool(name="workers", count=1, constraints=gpus)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=None)
    held = await env.run(
        MaasActivities().acquire_machines,
        AcquireMachinesInput(
            account=zoned.account, cluster_id="c-plan", request_id="create", pools=[workers]
        ),
    )
    assert [m.zone for m in held.machines] == ["az2"]
    # The cluster's pool has one machine in az2: the next one goes to az1.
    scale = await _plan(client, zoned, gateway, [workers], cluster_id="c-plan")
    assert [m.zone for m in scale.pools[0].would_take] == ["az1"]
    # A create of the same pool would start with the zone listed first.
    create = await _plan(client, zoned, gateway, [workers])
    assert [m.zone for m in create.pools[0].would_take] == ["az2"]


async def test_an_unknown_zone_is_named_with_the_zones_maas_has(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    workers = NodePool(name="workers", count=1, constraints=MachineConstraints(zones=["az7"]))
    plan = await _plan(client, zoned, gateway, [workers])
    assert not plan.satisfiable
    assert plan.pools[0].problem == (
        "MAAS has no zone az7; its zones are az1, az2, default: fix constraints.zones"
    )
    await _nothing_allocated(zoned)


async def test_unknown_tag_is_reported_by_maas(
    client: Client, zoned: Maas, gateway: GatewayRef
) -> None:
    workers = NodePool(name="workers", count=1, constraints=MachineConstraints(tags=["tpu"]))
    plan = await _plan(client, zoned, gateway, [workers])
    assert not plan.satisfiable
    assert "tpu" in plan.pools[0].problem and "MAAS rejects" in plan.pools[0].problem
    await _nothing_allocated(zoned)


async def test_offline_gateway_is_named_not_waited_for(client: Client, zoned: Maas) -> None:
    nobody = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="plan-offline")
    with pytest.raises(WorkflowFailureError) as caught:
        await _plan(client, zoned, nobody, [CONTROL_PLANE], wait=1.0)
    cause = caught.value.cause
    assert getattr(cause, "type", None) == Reason.GATEWAY_UNAVAILABLE.value
    assert "gateway plan-offline is offline" in str(cause)
