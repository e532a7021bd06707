"""The orphan sweeper on a real dev server, emulator and store: it releases what only a dead
cluster claims, after the grace period, records why, and leaves live and in-flight machines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from maas.client.bones import SessionAPI
from sqlalchemy import select
from temporalio.client import Client, ScheduleIntervalSpec
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.maas import MaasActivities
from activities.models import AcquireMachinesInput, EnsureEndpointInput
from activities.orphans import OrphanActivities, registered_gateways
from domain.cluster import ControlPlaneEndpoint, NodePool
from domain.lifecycle import GatewayRef
from domain.maas import MaasAccount
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    ORPHAN_SWEEP_WORKFLOW,
    create_workflow_id,
    endpoint_record_name,
    gateway_queue,
    orphan_sweep_schedule_id,
)
from domain.phases import Phase, Reason
from maas_emulator.config import EmulatorConfig
from maas_emulator.server import admin_api_key, build_app
from runtime.schedules import ensure_orphan_sweep_schedule, ensure_orphan_sweeps
from runtime.settings import Settings
from store.db import Database
from store.models import CloudAccount, Cluster, ClusterEvent, Gateway, Project
from store.secrets import SecretBox
from store.types import utcnow
from tests.chaos.maas_watch import MaasWatch, owner_of
from tests.hostile.hostile_maas import serving
from workflows.contracts import OrphanSweepInput
from workflows.orphan_sweep import OrphanSweep, OrphanSweepResult

pytestmark = pytest.mark.timeout(120)
OURS = "mg-ours"


@pytest.fixture
async def maas(tmp_path: Path) -> AsyncIterator[MaasAccount]:
    app = build_app(
        EmulatorConfig(
            data_dir=tmp_path / "maas", machines=6, deploy_seconds=0, release_seconds=0, seed=3
        )
    )
    async with serving(app) as url:
        yield MaasAccount(url=f"{url}/MAAS/", api_key=admin_api_key(app))


async def _store(tmp_path: Path, account: MaasAccount, gateway_id: str, box: SecretBox) -> Database:
    database = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with database.sessions.begin() as session:
        # Flushed one by one: without relationships the unit of work does not order by FK.
        session.add(Project(id="p1", name="p1"))
        await session.flush()
        session.add(
            CloudAccount(
                id="a1",
                project_id="p1",
                name="maas",
                maas_url=account.url,
                maas_api_key_enc=box.encrypt(account.api_key),
                gateway_id=gateway_id,
            )
        )
        await session.flush()
        for cluster_id, phase in (("live", Phase.RUNNING), ("gone", Phase.DELETED)):
            session.add(
                Cluster(
                    id=cluster_id,
                    project_id="p1",
                    name=cluster_id,
                    cloud_account_id="a1",
                    gateway_id=gateway_id,
                    spec={},
                    phase=phase.value,
                    kubernetes_version="v1.30.4",
                )
            )
    return database


async def _take(
    maas: MaasActivities, account: MaasAccount, cluster_id: str, installation: str = OURS
) -> str:
    taken = await ActivityEnvironment().run(
        maas.acquire_machines,
        AcquireMachinesInput(
            account=account,
            cluster_id=cluster_id,
            request_id="r1",
            pools=[NodePool(name="cp", count=1)],
            installation_id=installation,
        ),
    )
    return taken.machines[0].system_id


async def test_sweep_releases_only_unclaimed_machines(
    client: Client, maas: MaasAccount, tmp_path: Path
) -> None:
    gateway = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="sweep-test")
    box = SecretBox("orphan-sweep-test")
    database = await _store(tmp_path, maas, gateway.id, box)
    maas_activities = MaasActivities()
    live = await _take(maas_activities, maas, "live")
    gone = await _take(maas_activities, maas, "gone")
    stranger = await _take(maas_activities, maas, "never-stored")
    # A second installation on the same MAAS, and one of ours the store does not know
    # (restored from an older backup) whose create is still open in Temporal.
    theirs = await _take(maas_activities, maas, "their-cluster", installation="mg-theirs")
    restored = await _take(maas_activities, maas, "restored")
    await client.start_workflow(
        "NobodyRunsThis",
        id=create_workflow_id("restored"),
        task_queue=f"tq-{uuid.uuid4()}",
    )
    settings = Settings(_env_file=None, data_dir=tmp_path, installation_id=OURS)
    control_plane = ControlPlaneActivities(database.sessions, client, settings)
    activities: list[Any] = [
        control_plane.cluster_claims,
        *OrphanActivities(database.sessions, box).all(),
    ]
    async with (
        Worker(
            client, task_queue=CONTROL_PLANE_QUEUE, workflows=[OrphanSweep], activities=activities
        ),
        Worker(client, task_queue=gateway_queue(gateway.id), activities=maas_activities.all()),
    ):
        result = await client.execute_workflow(
            ORPHAN_SWEEP_WORKFLOW,
            OrphanSweepInput(gateway=gateway, grace_seconds=1.0),
            id=f"test-orphan-sweep-{uuid.uuid4()}",
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=OrphanSweepResult,
            execution_timeout=timedelta(seconds=60),
        )
    await client.get_workflow_handle(create_workflow_id("restored")).terminate("test over")
    assert sorted(result.released) == sorted([gone, stranger])
    machines = {m["system_id"]: m for m in await MaasWatch(maas.url, maas.api_key).machines()}
    assert owner_of(machines[theirs]) == "their-cluster"
    assert owner_of(machines[restored]) == "restored"
    assert owner_of(machines[live]) == "live" and machines[live]["status_name"] != "Ready"
    assert not owner_of(machines[gone]) and not owner_of(machines[stranger])
    async with database.sessions() as session:
        events = (
            await session.scalars(
                select(ClusterEvent).where(ClusterEvent.reason == Reason.ORPHAN_RELEASED)
            )
        ).all()
    assert [(e.cluster_id, gone in e.message) for e in events] == [("gone", True)]
    await database.close()


async def test_schedule_is_created_once_and_updated(client: Client) -> None:
    gateway = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="schedule-test")
    await ensure_orphan_sweep_schedule(client, gateway, every=timedelta(minutes=10))
    await ensure_orphan_sweep_schedule(client, gateway, every=timedelta(minutes=3))
    handle = client.get_schedule_handle(orphan_sweep_schedule_id(gateway.id))
    try:
        described = await handle.describe()
        intervals = described.schedule.spec.intervals
        assert intervals == [ScheduleIntervalSpec(every=timedelta(minutes=3))]
    finally:
        await handle.delete()


async def test_worker_start_schedules_every_registered_gateway(
    client: Client, tmp_path: Path
) -> None:
    database = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    registered, pending = (f"gw-{uuid.uuid4().hex[:8]}" for _ in range(2))
    async with database.sessions.begin() as session:
        session.add(Project(id="p1", name="p1"))
        await session.flush()
        session.add(Gateway(id=registered, project_id="p1", name="r", registered_at=utcnow()))
        session.add(Gateway(id=pending, project_id="p1", name="p"))
    custom = GatewayRef(id=registered, name="r")
    await ensure_orphan_sweep_schedule(client, custom, every=timedelta(minutes=2))
    try:
        gateways = await registered_gateways(database.sessions, system_gateway=False)
        ids = await ensure_orphan_sweeps(client, gateways)
        assert ids == [registered]
        described = await client.get_schedule_handle(
            orphan_sweep_schedule_id(registered)
        ).describe()
        # An existing schedule keeps its tuning across worker starts.
        assert described.schedule.spec.intervals == [
            ScheduleIntervalSpec(every=timedelta(minutes=2))
        ]
    finally:
        await client.get_schedule_handle(orphan_sweep_schedule_id(registered)).delete()
        await database.close()


async def _endpoint(maas: MaasActivities, account: MaasAccount, cluster_id: str) -> str:
    made = await ActivityEnvironment().run(
        maas.endpoints.ensure_endpoint,
        EnsureEndpointInput(
            account=account,
            cluster_id=cluster_id,
            endpoint=ControlPlaneEndpoint(),
            control_plane_pool="cp",
        ),
    )
    return made.host


async def test_sweep_removes_endpoints_only_a_dead_cluster_claims(
    client: Client, maas: MaasAccount, tmp_path: Path
) -> None:
    gateway = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="sweep-endpoints")
    box = SecretBox("orphan-sweep-test")
    database = await _store(tmp_path, maas, gateway.id, box)
    maas_activities = MaasActivities()
    live_vip = await _endpoint(maas_activities, maas, "live")
    await _endpoint(maas_activities, maas, "gone")
    await _endpoint(maas_activities, maas, "never-stored")
    activities: list[Any] = [*OrphanActivities(database.sessions, box).all()]
    control_plane = ControlPlaneActivities(database.sessions, client, Settings(_env_file=None))
    async with (
        Worker(
            client,
            task_queue=CONTROL_PLANE_QUEUE,
            workflows=[OrphanSweep],
            activities=[*activities, control_plane.cluster_claims],
        ),
        Worker(client, task_queue=gateway_queue(gateway.id), activities=maas_activities.all()),
    ):
        result = await client.execute_workflow(
            ORPHAN_SWEEP_WORKFLOW,
            OrphanSweepInput(gateway=gateway, grace_seconds=1.0),
            id=f"test-orphan-sweep-{uuid.uuid4()}",
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=OrphanSweepResult,
            execution_timeout=timedelta(seconds=60),
        )
    gone = {endpoint_record_name(c) + ".maas" for c in ("gone", "never-stored")}
    assert set(result.removed_endpoints) == gone and result.released == []
    _, session = await SessionAPI.connect(maas.url, apikey=maas.api_key)
    assert [a["ip"] for a in await session.IPAddresses.read()] == [live_vip]
    assert [r["fqdn"] for r in await session.DNSResources.read()] == [
        endpoint_record_name("live") + ".maas"
    ]
    async with database.sessions() as store:
        events = (
            await store.scalars(
                select(ClusterEvent).where(ClusterEvent.reason == Reason.ORPHAN_RELEASED)
            )
        ).all()
    assert [(e.cluster_id, "endpoint" in e.message) for e in events] == [("gone", True)]
    await database.close()
