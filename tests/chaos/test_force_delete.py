"""Force delete on a real dev server, emulator and store: with the gateway stopped the delete
finishes, naming exactly what MAAS still holds; once the gateway is back the orphan sweeper
releases those things by their ownership marks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from maas.client.bones import SessionAPI
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.maas import MaasActivities
from activities.models import AcquireMachinesInput, EnsureEndpointInput
from activities.orphans import OrphanActivities
from domain.cluster import ClusterSpec, NodePool
from domain.leftovers import endpoint_event
from domain.lifecycle import (
    ClusterRef,
    DeleteClusterInput,
    DeleteClusterResult,
    GatewayRef,
    LifecycleTimeouts,
)
from domain.maas import MaasAccount
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    DELETE_WORKFLOW,
    ORPHAN_SWEEP_WORKFLOW,
    SIGNAL_FORCE_DELETE,
    delete_workflow_id,
    gateway_queue,
)
from domain.phases import Phase, Reason
from maas_emulator.config import EmulatorConfig
from maas_emulator.server import admin_api_key, build_app
from runtime.settings import Settings
from store.db import Database
from store.models import CloudAccount, Cluster, ClusterEvent, Project
from store.secrets import SecretBox
from store.types import utcnow
from tests.chaos.maas_watch import MaasWatch, owner_of
from tests.hostile.hostile_maas import serving
from tests.support.temporal import assert_eventually
from workflows.contracts import OrphanSweepInput
from workflows.delete import ClusterDelete
from workflows.orphan_sweep import OrphanSweep, OrphanSweepResult

pytestmark = pytest.mark.timeout(120)
OURS = "mg-force"
SPEC = ClusterSpec(name="forced", control_plane=NodePool(name="cp", count=1))


@pytest.fixture
async def maas(tmp_path: Path) -> AsyncIterator[MaasAccount]:
    app = build_app(
        EmulatorConfig(
            data_dir=tmp_path / "maas", machines=3, deploy_seconds=0, release_seconds=0, seed=5
        )
    )
    async with serving(app) as url:
        yield MaasAccount(url=f"{url}/MAAS/", api_key=admin_api_key(app))


async def _cluster_in_maas(
    maas: MaasAccount, database: Database, box: SecretBox, gateway: GatewayRef, cluster_id: str
) -> tuple[dict[str, Any], str]:
    """What a create leaves: a marked machine and a VIP, recorded in the store as the saga
    records them. Answers the machine as the store lists it, and the VIP."""
    maas_activities = MaasActivities()
    taken = await ActivityEnvironment().run(
        maas_activities.acquire_machines,
        AcquireMachinesInput(
            account=maas,
            cluster_id=cluster_id,
            request_id="r1",
            pools=[SPEC.control_plane],
            installation_id=OURS,
        ),
    )
    endpoint = await ActivityEnvironment().run(
        maas_activities.endpoints.ensure_endpoint,
        EnsureEndpointInput(
            account=maas,
            cluster_id=cluster_id,
            endpoint=SPEC.control_plane_endpoint,
            control_plane_pool="cp",
        ),
    )
    machine = taken.machines[0].model_copy(update={"ip_addresses": ["10.9.0.7"]})
    async with database.sessions.begin() as session:
        session.add(Project(id="p1", name="p1"))
        await session.flush()
        session.add(
            CloudAccount(
                id="a1",
                project_id="p1",
                name="maas",
                maas_url=maas.url,
                maas_api_key_enc=box.encrypt(maas.api_key),
                gateway_id=gateway.id,
            )
        )
        await session.flush()
        session.add(
            Cluster(
                id=cluster_id,
                project_id="p1",
                name=SPEC.name,
                active_name=SPEC.name,
                cloud_account_id="a1",
                gateway_id=gateway.id,
                spec=SPEC.model_dump(mode="json"),
                phase=Phase.RUNNING.value,
                machines=[machine.model_dump(mode="json")],
                kubernetes_version="v1.30.4",
                delete_requested_at=utcnow(),
            )
        )
        await session.flush()
        session.add(
            ClusterEvent(
                cluster_id=cluster_id,
                phase=Phase.BOOTSTRAPPING_CONTROL_PLANE.value,
                message=endpoint_event(endpoint.mode, endpoint.host, endpoint.addresses),
            )
        )
    return machine.model_dump(mode="json"), endpoint.host


async def _cluster(database: Database, cluster_id: str) -> Cluster:
    async with database.sessions() as session:
        cluster = await session.get(Cluster, cluster_id)
        assert cluster is not None
        return cluster


async def test_force_delete_without_gateway_then_sweeper_cleans_up(
    client: Client, maas: MaasAccount, tmp_path: Path
) -> None:
    gateway = GatewayRef(id=f"gw-{uuid.uuid4().hex[:8]}", name="force-test")
    cluster_id = f"cl{uuid.uuid4().hex[:8]}"
    box = SecretBox("force-delete-test")
    database = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    machine, vip = await _cluster_in_maas(maas, database, box, gateway, cluster_id)
    settings = Settings(_env_file=None, data_dir=tmp_path, installation_id=OURS)
    activities: list[Any] = [
        *ControlPlaneActivities(database.sessions, client, settings).all(),
        *OrphanActivities(database.sessions, box).all(),
    ]
    async with Worker(
        client,
        task_queue=CONTROL_PLANE_QUEUE,
        workflows=[ClusterDelete, OrphanSweep],
        activities=activities,
    ):
        handle = await client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(
                cluster=ClusterRef(
                    cluster_id=cluster_id,
                    project_id="p1",
                    spec=SPEC,
                    gateway=gateway,
                    account=maas,
                    installation_id=OURS,
                ),
                timeouts=LifecycleTimeouts(gateway_probe=1.0),
            ),
            id=delete_workflow_id(cluster_id),
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=DeleteClusterResult,
        )

        async def waiting() -> None:
            assert (await _cluster(database, cluster_id)).reason == Reason.WAITING_FOR_GATEWAY

        await assert_eventually(waiting, within=30)
        await handle.signal(SIGNAL_FORCE_DELETE)
        result = await handle.result()
        dns_record = f"metalgate-{cluster_id}"
        assert result.left_behind is not None
        assert [m.system_id for m in result.left_behind.machines] == [machine["system_id"]]
        assert (result.left_behind.vip, result.left_behind.dns_record) == (vip, dns_record)

        cluster = await _cluster(database, cluster_id)
        assert (cluster.phase, cluster.reason) == (Phase.DELETED, Reason.FORCE_DELETED)
        assert cluster.machines == [machine]
        for thing in (machine["system_id"], "10.9.0.7", vip, dns_record, "orphan sweeper"):
            assert thing in cluster.message
        async with database.sessions() as session:
            events = (
                await session.scalars(
                    select(ClusterEvent.message).where(ClusterEvent.cluster_id == cluster_id)
                )
            ).all()
        left = [e for e in events if e.startswith("left in MAAS by force delete: ")]
        assert left == [
            "left in MAAS by force delete: machine "
            f"{machine['hostname']} (system id {machine['system_id']}, IP 10.9.0.7)",
            f"left in MAAS by force delete: IP {vip} (the endpoint VIP)",
            f"left in MAAS by force delete: DNS record {dns_record}",
        ]
        # MAAS still holds them: nothing could be released without the gateway.
        watched = {m["system_id"]: m for m in await MaasWatch(maas.url, maas.api_key).machines()}
        assert owner_of(watched[machine["system_id"]]) == cluster_id

        # The gateway comes back: the sweeper finds the leftovers by their marks.
        async with Worker(
            client, task_queue=gateway_queue(gateway.id), activities=MaasActivities().all()
        ):
            swept = await client.execute_workflow(
                ORPHAN_SWEEP_WORKFLOW,
                OrphanSweepInput(gateway=gateway, grace_seconds=1.0),
                id=f"test-orphan-sweep-{uuid.uuid4()}",
                task_queue=CONTROL_PLANE_QUEUE,
                result_type=OrphanSweepResult,
                execution_timeout=timedelta(seconds=60),
            )
    assert swept.released == [machine["system_id"]]
    assert swept.removed_endpoints == [f"{dns_record}.maas"]
    watched = {m["system_id"]: m for m in await MaasWatch(maas.url, maas.api_key).machines()}
    assert not owner_of(watched[machine["system_id"]])
    _, bones = await SessionAPI.connect(maas.url, apikey=maas.api_key)
    assert [a["ip"] for a in await bones.IPAddresses.read()] == []
    # The cluster no longer lists as left what the sweeper released.
    assert (await _cluster(database, cluster_id)).machines == []
    await database.close()
