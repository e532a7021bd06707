"""POST /v1/clusters/plan and ?dry_run=true: the real plan workflow and gateway activity
against the emulator; nothing is stored or allocated, and an offline gateway is named."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.maas import MaasActivities
from activities.maas_session import MaasSessions
from activities.models import RecordStatusInput
from domain.naming import gateway_queue
from domain.phases import Phase
from maas_emulator.config import EmulatorConfig
from maas_emulator.server import admin_api_key, build_app
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.test_accounts import create_account
from tests.api.test_clusters import spec
from tests.api.test_gateways import create_gateway, register
from tests.hostile.hostile_maas import serving
from tests.support.api_server import STANDIN_GATEWAY_KEYS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def maas(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    app = build_app(EmulatorConfig(data_dir=tmp_path / "maas", machines=4, seed=3))
    async with serving(app) as url:
        yield f"{url}/MAAS/", admin_api_key(app)


@pytest.fixture
async def gateway(api: Api, project: ProjectKeys) -> dict[str, Any]:
    created = await create_gateway(api, project.editor)
    await register(api, created["registration_token"])
    return dict(created["gateway"])


def _worker(env: WorkflowEnvironment, gateway: dict[str, Any]) -> Worker:
    return Worker(
        env.client,
        task_queue=gateway_queue(gateway["id"]),
        activities=MaasActivities(MaasSessions(keys=STANDIN_GATEWAY_KEYS)).all(),
    )


async def test_plan_answers_per_pool_and_stores_nothing(
    api: Api,
    project: ProjectKeys,
    env: WorkflowEnvironment,
    maas: tuple[str, str],
    gateway: dict[str, Any],
) -> None:
    url, key = maas
    async with _worker(env, gateway):
        account = await create_account(
            api,
            project.editor,
            maas_url=url,
            maas_api_key=key,
            use_system_gateway=False,
            gateway_id=gateway["id"],
        )
        fits = {**spec(), "cloud_account_id": account["id"]}
        answer = await api.http.post("/v1/clusters/plan", json=fits, headers=project.editor)
        assert answer.status_code == 200, answer.text
        plan = answer.json()
        assert plan["satisfiable"], plan["summary"]
        assert [(p["pool"], len(p["would_take"])) for p in plan["pools"]] == [
            ("control-plane", 1),
            ("workers", 2),
        ]
        too_big = {**fits, "worker_pools": [{"name": "workers", "count": 9}]}
        dry = await api.http.post(
            "/v1/clusters", params={"dry_run": "true"}, json=too_big, headers=project.editor
        )
        assert dry.status_code == 200, dry.text
        refused = dry.json()
        assert not refused["satisfiable"]
        assert "workers: 9 asked" in refused["summary"]
    listed = await api.http.get("/v1/clusters", headers=project.viewer)
    assert fits["name"] not in [c["name"] for c in listed.json()["items"]]
    # The gateway is stopped now: the plan names it instead of hanging.
    offline = await api.http.post("/v1/clusters/plan", json=fits, headers=project.editor)
    assert offline.status_code == 503
    assert f"gateway {gateway['name']} is offline" in offline.json()["detail"]


async def test_scale_dry_run_plans_the_new_machines(
    api: Api,
    project: ProjectKeys,
    env: WorkflowEnvironment,
    maas: tuple[str, str],
    gateway: dict[str, Any],
    cp_activities: Any,
) -> None:
    url, key = maas
    async with _worker(env, gateway):
        account = await create_account(
            api,
            project.editor,
            maas_url=url,
            maas_api_key=key,
            use_system_gateway=False,
            gateway_id=gateway["id"],
        )
        body = {**spec(f"s-{uuid.uuid4().hex[:6]}"), "cloud_account_id": account["id"]}
        created = await api.http.post("/v1/clusters", json=body, headers=project.editor)
        assert created.status_code == 202, created.text
        cluster_id = created.json()["id"]
        await run_activity(
            cp_activities.record_status,
            RecordStatusInput(cluster_id=cluster_id, phase=Phase.RUNNING),
        )
        scale = f"/v1/clusters/{cluster_id}/scale"
        more = await api.http.post(
            scale,
            params={"dry_run": "true"},
            json={"pool": "workers", "count": 4},
            headers=project.editor,
        )
        assert more.status_code == 200, more.text
        assert [(p["pool"], p["asked"]) for p in more.json()["pools"]] == [("workers", 2)]
        fewer = await api.http.post(
            scale,
            params={"dry_run": "true"},
            json={"pool": "workers", "count": 1},
            headers=project.editor,
        )
        assert fewer.json()["pools"] == [] and "1 would be released" in fewer.json()["summary"]
        unknown = await api.http.post(
            scale,
            params={"dry_run": "true"},
            json={"pool": "gpu", "count": 1},
            headers=project.editor,
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "body.pool"
    stored = (await api.http.get(f"/v1/clusters/{cluster_id}", headers=project.viewer)).json()
    assert stored["spec"]["worker_pools"][0]["count"] == 2
