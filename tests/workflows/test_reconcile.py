"""The reconciler against a real store and the dev server: stranded clusters get their saga."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.models import ReconcileClustersInput, ReconcileClustersResult
from activities.reconcile import ReconcileActivities
from domain.cluster import ClusterSpec, NodePool
from domain.naming import (
    CREATE_WORKFLOW,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW,
    SYSTEM_GATEWAY_ID,
    create_workflow_id,
    delete_workflow_id,
)
from domain.phases import Phase, Reason
from runtime.schedules import ensure_reconcile_schedule
from runtime.settings import Settings
from store.db import Database
from store.models import CloudAccount, Cluster, ClusterEvent, Project
from store.secrets import SecretBox
from store.types import utcnow

BOX = SecretBox("reconcile-test")


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with db.sessions.begin() as session:
        session.add(Project(id="p1", name="p1"))
        await session.flush()
        session.add(
            CloudAccount(
                id="a1",
                project_id="p1",
                name="maas",
                maas_url="http://maas.invalid:5240/MAAS/",
                maas_api_key_enc=BOX.encrypt("k:t:s"),
                gateway_id=SYSTEM_GATEWAY_ID,
            )
        )
    yield db
    await db.close()


async def add(database: Database, phase: Phase, *, age: float = 600, deleting: bool = False) -> str:
    cluster_id = f"c-{uuid.uuid4().hex[:10]}"
    spec = ClusterSpec(
        name=cluster_id,
        control_plane=NodePool(name="control-plane", count=1),
        worker_pools=[NodePool(name="workers", count=1)],
    )
    at = utcnow() - timedelta(seconds=age)
    async with database.sessions.begin() as session:
        session.add(
            Cluster(
                id=cluster_id,
                project_id="p1",
                name=cluster_id,
                cloud_account_id="a1",
                gateway_id=SYSTEM_GATEWAY_ID,
                spec=spec.model_dump(mode="json"),
                phase=phase.value,
                kubernetes_version=spec.kubernetes_version,
                updated_at=at,
                delete_requested_at=at if deleting else None,
            )
        )
    return cluster_id


async def test_stranded_clusters_get_their_saga_and_an_event(
    client: Client, database: Database, tmp_path: Path
) -> None:
    queue = f"tq-{uuid.uuid4()}"  # nobody polls it: started sagas just wait
    pending = await add(database, Phase.PENDING)  # Temporal was down at the POST
    terminated = await add(database, Phase.DEPLOYING_OS)
    deleting = await add(database, Phase.DELETING, deleting=True)
    fresh = await add(database, Phase.PENDING, age=0)  # its POST may still start it
    creating = await add(database, Phase.ACQUIRING_MACHINES)
    await client.start_workflow(CREATE_WORKFLOW, id=create_workflow_id(creating), task_queue=queue)
    old = await client.start_workflow(
        CREATE_WORKFLOW, id=create_workflow_id(terminated), task_queue=queue
    )
    await old.terminate("an operator ended it")

    activities = ReconcileActivities(
        database.sessions, client, Settings(_env_file=None, data_dir=tmp_path), BOX
    )
    result: ReconcileClustersResult = await ActivityEnvironment().run(
        activities.reconcile_clusters, ReconcileClustersInput(min_age_seconds=60, task_queue=queue)
    )

    acted = sorted(line.split(":")[0] for line in result.actions)
    assert acted == sorted([pending, terminated, deleting])
    # A second run finds every saga open and does nothing.
    again = await ActivityEnvironment().run(
        activities.reconcile_clusters, ReconcileClustersInput(min_age_seconds=60, task_queue=queue)
    )
    assert again.actions == []
    started = [
        create_workflow_id(pending),
        create_workflow_id(terminated),
        delete_workflow_id(deleting),
        create_workflow_id(creating),
    ]
    for workflow_id in started:
        handle = client.get_workflow_handle(workflow_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.terminate("test over")
    async with database.sessions() as session:
        events = (
            await session.execute(
                select(ClusterEvent.cluster_id, ClusterEvent.message).where(
                    ClusterEvent.reason == Reason.RECONCILED.value
                )
            )
        ).all()
    assert sorted(c for c, _ in events) == sorted([pending, terminated, deleting])
    assert any("terminated" in m for c, m in events if c == terminated)
    assert fresh not in {c for c, _ in events}


async def test_the_reconcile_schedule_runs_the_workflow(client: Client) -> None:
    await ensure_reconcile_schedule(client, every=timedelta(minutes=2))
    await ensure_reconcile_schedule(client, every=timedelta(minutes=5))  # kept as is
    handle = client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    try:
        described = await handle.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(minutes=2)
        assert described.schedule.action.workflow == RECONCILE_WORKFLOW  # type: ignore[attr-defined]
    finally:
        await handle.delete()
