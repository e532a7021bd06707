"""DELETE ?force=true: refused (409, saying when) until a normal delete has been stuck for
force_delete_after; then the delete saga is signalled, started again if it had ended."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.naming import SIGNAL_FORCE_DELETE, delete_workflow_id
from store.db import Database
from store.models import Cluster
from store.types import utcnow
from tests.api.conftest import Api, ProjectKeys
from tests.api.test_accounts import create_account
from tests.api.test_clusters import create_cluster


async def test_force_waits_for_the_bound_then_signals_the_delete(
    api: Api, project: ProjectKeys, system_gateway: Worker, env: WorkflowEnvironment
) -> None:
    account: dict[str, Any] = await create_account(api, project.editor)
    cluster = await create_cluster(api, project.editor, account)
    path = f"/v1/clusters/{cluster['id']}"

    early = await api.http.delete(path, params={"force": "true"}, headers=project.editor)
    assert early.status_code == 409
    assert "run DELETE without force first" in early.json()["detail"]

    assert (await api.http.delete(path, headers=project.editor)).status_code == 202
    too_soon = await api.http.delete(path, params={"force": "true"}, headers=project.editor)
    assert too_soon.status_code == 409
    assert "force is allowed from" in too_soon.json()["detail"]
    assert "force_delete_after" in too_soon.json()["detail"]

    # The delete has been stuck for longer than the bound.
    database = await Database.open(api.settings)
    try:
        async with database.sessions.begin() as session:
            await session.execute(
                update(Cluster)
                .where(Cluster.id == cluster["id"])
                .values(delete_requested_at=utcnow() - timedelta(hours=1))
            )
    finally:
        await database.close()
    forced = await api.http.delete(path, params={"force": "true"}, headers=project.editor)
    assert forced.status_code == 202, forced.text
    history = await env.client.get_workflow_handle(
        delete_workflow_id(cluster["id"])
    ).fetch_history()
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals == [SIGNAL_FORCE_DELETE]
    events = await api.http.get(f"{path}/events", headers=project.viewer)
    assert "force delete requested" in events.json()["items"][-1]["message"]
