"""A live API on a free port, a real SQLite store, the session's dev server, and stand-in
workflows on the control-plane queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from domain.naming import CONTROL_PLANE_QUEUE, SYSTEM_GATEWAY_ID, gateway_queue
from runtime.settings import Settings
from store.db import Database
from tests.api.standins import STANDIN_WORKFLOWS, check_account_standin
from tests.support.api_server import ADMIN_KEY, api_settings, running_api

T = TypeVar("T")


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@dataclass
class Api:
    url: str
    settings: Settings
    http: httpx.AsyncClient

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class ProjectKeys:
    project_id: str
    admin: dict[str, str]
    editor: dict[str, str]
    viewer: dict[str, str]


async def new_project(api: Api) -> ProjectKeys:
    answer = await api.http.post(
        "/v1/projects", json={"name": f"p-{uuid.uuid4().hex[:8]}"}, headers=api.admin
    )
    assert answer.status_code == 201, answer.text
    project_id = answer.json()["id"]
    keys: dict[str, dict[str, str]] = {}
    for role in ("admin", "editor", "viewer"):
        made = await api.http.post(
            f"/v1/projects/{project_id}/api-keys",
            json={"name": role, "role": role},
            headers=api.admin,
        )
        assert made.status_code == 201, made.text
        keys[role] = {"Authorization": f"Bearer {made.json()['key']}"}
    return ProjectKeys(project_id, keys["admin"], keys["editor"], keys["viewer"])


@pytest.fixture(scope="module")
async def control_plane_standins(env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    """Stand-ins on the real queue; whatever they leave running is terminated afterwards."""
    client = env.client
    async with Worker(
        client, task_queue=CONTROL_PLANE_QUEUE, workflows=STANDIN_WORKFLOWS
    ) as worker:
        yield worker
    names = ", ".join(f"'{w.__temporal_workflow_definition.name}'" for w in STANDIN_WORKFLOWS)  # type: ignore[attr-defined]
    query = f"ExecutionStatus = 'Running' AND WorkflowType IN ({names})"
    async for execution in client.list_workflows(query):
        if execution.status == WorkflowExecutionStatus.RUNNING:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate(
                "test over"
            )


@pytest.fixture(scope="module")
async def system_gateway(env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    """A worker polling gateway.system with a stand-in account check."""
    async with Worker(
        env.client, task_queue=gateway_queue(SYSTEM_GATEWAY_ID), activities=[check_account_standin]
    ) as worker:
        yield worker


@pytest.fixture(scope="module")
async def api(
    env: WorkflowEnvironment,
    codec_keys: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    control_plane_standins: Worker,
) -> AsyncIterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("api")
    settings = api_settings(data_dir, temporal_address(env), codec_keys)
    async with running_api(
        settings,
        account_validation_seconds=3.0,
        heartbeat_flush_seconds=0.2,
        agent_cache_seconds=1.0,
    ) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Api(url, settings, http)


@pytest.fixture(scope="module")
async def project(api: Api) -> ProjectKeys:
    return await new_project(api)


@pytest.fixture(scope="module")
async def other_project(api: Api) -> ProjectKeys:
    return await new_project(api)


@pytest.fixture(scope="module")
async def cp_activities(
    api: Api, env: WorkflowEnvironment
) -> AsyncIterator[ControlPlaneActivities]:
    """The real lifecycle writer on the API's store, to move clusters through phases."""
    database = await Database.open(api.settings)
    try:
        yield ControlPlaneActivities(database.sessions, env.client, api.settings)
    finally:
        await database.close()


async def run_activity(fn: Callable[[Any], Awaitable[T]], arg: Any) -> T:
    return await ActivityEnvironment().run(fn, arg)
