"""ClusterCreate and ClusterDelete end to end: the real MAAS emulator, the real gateway
activities, the real control-plane activities and store. Only the cluster agent is played
by the test (it signals the report a booted agent would send)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from maas.client.bones import SessionAPI
from sqlalchemy import select
from temporalio.client import Client

from activities.control_plane import ControlPlaneActivities
from activities.maas import MaasActivities
from bootstrap import kubeadm_config as kc
from domain.cluster import (
    ClusterSpec,
    ControlPlaneEndpoint,
    EndpointMode,
    ErasePolicy,
    MachineConstraints,
    NodePool,
)
from domain.lifecycle import (
    ClusterRef,
    CreateClusterInput,
    CreateClusterResult,
    DeleteClusterInput,
    DeleteClusterResult,
    GatewayRef,
)
from domain.maas import MaasAccount, Machine
from domain.naming import (
    CREATE_WORKFLOW,
    DELETE_WORKFLOW,
    SIGNAL_AGENT_REPORT,
    create_workflow_id,
    delete_workflow_id,
    gateway_queue,
    manage_workflow_id,
    owner_agent_name,
)
from domain.node_labels import Taint
from domain.phases import Phase, Reason
from maas_emulator.config import EmulatorConfig
from maas_emulator.hooks import HookEvent
from maas_emulator.inventory import Inventory, MachineSpec
from maas_emulator.server import admin_api_key, build_app
from runtime.settings import Settings
from store.db import Database
from store.models import Cluster, ClusterEvent, Project
from tests.support.ports import free_port
from tests.support.temporal import assert_eventually, new_worker
from tests.workflows.fakes import FAST, is_running, ready_report
from workflows.registry import CONTROL_PLANE_WORKFLOWS

PROJECT = "prj-int"


@dataclass
class Stack:
    client: Client
    database: Database
    account: MaasAccount
    gateway: GatewayRef
    task_queue: str
    # The user data each machine booted with (the emulator's boot hook), by system id.
    booted: dict[str, bytes] = field(default_factory=dict)

    async def owned(self, cluster_id: str) -> list[dict[str, Any]]:
        _profile, session = await SessionAPI.connect(self.account.url, apikey=self.account.api_key)
        machines = await session.Machines.read(agent_name=[owner_agent_name(cluster_id)])
        return list(machines)

    async def cluster_row(self, cluster_id: str) -> Cluster:
        async with self.database.sessions() as session:
            row = await session.get(Cluster, cluster_id)
        assert row is not None
        return row

    async def new_cluster(self, workers: int = 0, spec: ClusterSpec | None = None) -> ClusterRef:
        """A stored cluster: one control-plane node and `workers`, or `spec` renamed."""
        cluster_id = f"cl-{uuid.uuid4().hex[:8]}"
        spec = spec or ClusterSpec(name="x", worker_pools=[NodePool(name="workers", count=workers)])
        spec = spec.model_copy(update={"name": cluster_id, "erase_policy": ErasePolicy.NONE})
        async with self.database.sessions.begin() as session:
            session.add(
                Cluster(
                    id=cluster_id,
                    project_id=PROJECT,
                    name=spec.name,
                    active_name=spec.name,
                    cloud_account_id="acc-int",
                    gateway_id=self.gateway.id,
                    spec=spec.model_dump(mode="json"),
                    phase=Phase.PENDING.value,
                    kubernetes_version=spec.kubernetes_version,
                )
            )
        return ClusterRef(
            cluster_id=cluster_id,
            project_id=PROJECT,
            spec=spec,
            gateway=self.gateway,
            account=self.account,
        )

    async def create(self, cluster: ClusterRef) -> Any:
        return await self.client.start_workflow(
            CREATE_WORKFLOW,
            CreateClusterInput(cluster=cluster, timeouts=FAST),
            id=create_workflow_id(cluster.cluster_id),
            task_queue=self.task_queue,
            result_type=CreateClusterResult,
        )


@pytest.fixture
async def stack(client: Client, tmp_path: Path) -> AsyncIterator[Stack]:
    async with real_stack(client, tmp_path) as s:
        yield s


@asynccontextmanager
async def real_stack(
    client: Client, tmp_path: Path, inventory: Inventory | None = None
) -> AsyncIterator[Stack]:
    inventory_file = None
    if inventory is not None:
        inventory_file = tmp_path / "inventory.json"
        inventory_file.write_text(inventory.model_dump_json())
    config = EmulatorConfig(
        data_dir=tmp_path / "maas",
        machines=6,
        inventory=inventory_file,
        deploy_seconds=0.3,
        release_seconds=0.1,
        seed=1,
    )
    config.data_dir.mkdir()
    booted: dict[str, bytes] = {}

    async def boot(event: HookEvent) -> None:
        if event.event == "deployed":
            booted[event.system_id] = event.user_data

    app = build_app(config, hook=boot)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/MAAS/"
    database = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}")
    async with database.sessions.begin() as session:
        session.add(Project(id=PROJECT, name="integration"))
    settings = Settings(_env_file=None, data_dir=tmp_path, api_url="http://127.0.0.1:1")
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    s = Stack(
        client=client,
        database=database,
        account=MaasAccount(url=url, api_key=admin_api_key(app)),
        gateway=GatewayRef(id=gateway_id, name=f"pcg-{gateway_id[3:]}"),
        task_queue=f"cp-{uuid.uuid4()}",
        booted=booted,
    )
    control_plane = ControlPlaneActivities(database.sessions, client, settings)
    try:
        async with (
            new_worker(
                client,
                *CONTROL_PLANE_WORKFLOWS,
                activities=control_plane.all(),
                task_queue=s.task_queue,
            ),
            new_worker(
                client, activities=MaasActivities().all(), task_queue=gateway_queue(gateway_id)
            ),
        ):
            yield s
    finally:
        await database.close()
        await runner.cleanup()


async def test_create_runs_and_delete_releases_on_the_real_stack(stack: Stack) -> None:
    cluster = await stack.new_cluster(workers=2)
    create = await stack.create(cluster)

    async def bootstrapping() -> list[Machine]:
        row = await stack.cluster_row(cluster.cluster_id)
        assert row.phase == Phase.BOOTSTRAPPING_CONTROL_PLANE, (row.phase, row.reason, row.message)
        return [Machine.model_validate(m) for m in row.machines]

    machines = await assert_eventually(bootstrapping, within=30)
    assert len(machines) == 3
    await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
    result = await create.result()

    assert result.phase == Phase.RUNNING
    row = await stack.cluster_row(cluster.cluster_id)
    assert row.phase == Phase.RUNNING and len(row.machines) == 3
    owned = await stack.owned(cluster.cluster_id)
    assert sorted(m["system_id"] for m in owned) == sorted(m.system_id for m in machines)
    assert all(m["status_name"] == "Deployed" for m in owned)
    manage = stack.client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
    assert await is_running(manage)

    deleted = await stack.client.execute_workflow(
        DELETE_WORKFLOW,
        DeleteClusterInput(cluster=cluster, timeouts=FAST),
        id=delete_workflow_id(cluster.cluster_id),
        task_queue=stack.task_queue,
        result_type=DeleteClusterResult,
    )

    assert sorted(deleted.released) == sorted(m.system_id for m in machines)
    assert await stack.owned(cluster.cluster_id) == []
    assert not await is_running(manage)
    row = await stack.cluster_row(cluster.cluster_id)
    assert row.phase == Phase.DELETED


async def test_capacity_shortfall_on_the_real_stack_holds_nothing(stack: Stack) -> None:
    cluster = await stack.new_cluster(workers=6)
    result = await (await stack.create(cluster)).result()

    assert result.phase == Phase.FAILED
    assert result.reason == Reason.INSUFFICIENT_CAPACITY, result.message
    assert await stack.owned(cluster.cluster_id) == []
    row = await stack.cluster_row(cluster.cluster_id)
    assert row.phase == Phase.FAILED and row.reason == Reason.INSUFFICIENT_CAPACITY


# Two machines in az1 and az2, none in az3, and one a pool does not list.
ZONED = Inventory(
    zones=["default", "az1", "az2", "az3"],
    machines=[
        *(MachineSpec(hostname=f"{z}-{i}", zone=z) for z in ("az1", "az2") for i in (1, 2)),
        MachineSpec(hostname="spare", zone="default"),
    ],
)


async def test_a_zoned_create_spreads_labels_and_says_where_a_zone_had_no_room(
    client: Client, tmp_path: Path
) -> None:
    spread = MachineConstraints(zones=["az1", "az2", "az3"])
    spec = ClusterSpec(
        name="x",
        control_plane=NodePool(name="control-plane", count=3, constraints=spread),
        worker_pools=[
            NodePool(
                name="gpu",
                count=1,
                constraints=spread,
                labels={"example.com/gpu": "a100"},
                taints=[Taint(key="example.com/gpu", effect="NoSchedule")],
            )
        ],
        control_plane_endpoint=ControlPlaneEndpoint(mode=EndpointMode.EXTERNAL, address="lb.corp"),
    )
    async with real_stack(client, tmp_path, ZONED) as stack:
        cluster = await stack.new_cluster(spec=spec)
        create = await stack.create(cluster)

        async def bootstrapping() -> list[Machine]:
            row = await stack.cluster_row(cluster.cluster_id)
            assert row.phase == Phase.BOOTSTRAPPING_CONTROL_PLANE, (row.phase, row.message)
            return [Machine.model_validate(m) for m in row.machines]

        machines = await assert_eventually(bootstrapping, within=30)
        control_plane = sorted(m.zone for m in machines if m.pool == "control-plane")
        assert control_plane == ["az1", "az1", "az2"]  # az3 has no machine
        assert [m.zone for m in machines if m.pool == "gpu"] == ["az2"]
        async with stack.database.sessions() as session:
            events = list(
                await session.scalars(
                    select(ClusterEvent.message).where(
                        ClusterEvent.cluster_id == cluster.cluster_id
                    )
                )
            )
        assert any(
            e.startswith("pool control-plane: no free matching machine in zone az3") for e in events
        )

        async def all_booted() -> None:
            assert set(stack.booted) == {m.system_id for m in machines}

        await assert_eventually(all_booted, within=30)
        for machine in machines:
            files = {
                f["path"]: f["content"]
                for f in yaml.safe_load(stack.booted[machine.system_id])["write_files"]
            }
            first = kc.parse_documents(files["/etc/metalgate/kubeadm.yaml"])[0]
            assert isinstance(first, kc.InitConfiguration | kc.JoinConfiguration)
            assert first.node_registration is not None
            labels = first.node_registration.kubelet_extra_args or {}
            zone = f"topology.kubernetes.io/zone={machine.zone}"
            if machine.pool == "gpu":
                assert labels == {"node-labels": f"example.com/gpu=a100,{zone}"}
                assert [t.key for t in first.node_registration.taints or []] == ["example.com/gpu"]
            else:
                assert labels == {"node-labels": zone}
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        await stack.client.execute_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=cluster, timeouts=FAST),
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=stack.task_queue,
            result_type=DeleteClusterResult,
        )
