from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.naming import SYSTEM_GATEWAY_ID, gateway_queue, orphan_sweep_schedule_id
from runtime.codec import gateway_key_spec
from runtime.temporal import codec_key_specs
from tests.api.conftest import Api, ProjectKeys
from tests.api.standins import check_account_standin
from tests.support.api_server import STANDIN_GATEWAY_KEYS
from tests.support.temporal import assert_eventually


async def create_gateway(api: Api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await api.http.post(
        "/v1/gateways", json={"name": f"gw-{uuid.uuid4().hex[:6]}", **body}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def register(api: Api, token: str) -> dict[str, Any]:
    body = {
        "token": token,
        "hostname": "gw-host",
        "version": "0.1.0",
        "sealing_public_key": STANDIN_GATEWAY_KEYS.public_key,
    }
    answer = await api.http.post("/v1/gateways/register", json=body)
    assert answer.status_code == 200, answer.text
    identity: dict[str, Any] = answer.json()
    return identity


async def test_create_returns_token_and_command(api: Api, project: ProjectKeys) -> None:
    created = await create_gateway(
        api, project.editor, proxy={"http_proxy": "http://proxy:3128", "no_proxy": ["10.0.0.0/8"]}
    )
    token = created["registration_token"]
    assert created["register_command"] == (
        f"metalgate gateway register --api-url {api.settings.api_url} --token {token}"
    )
    assert created["gateway"]["status"] == "pending"
    assert created["gateway"]["task_queue"] == gateway_queue(created["gateway"]["id"])


async def test_registration_schedules_the_gateway_orphan_sweep(
    api: Api, project: ProjectKeys, client: Client
) -> None:
    created = await create_gateway(api, project.editor)
    gateway_id = created["gateway"]["id"]
    await register(api, created["registration_token"])
    schedule = await client.get_schedule_handle(orphan_sweep_schedule_id(gateway_id)).describe()
    assert schedule.id == orphan_sweep_schedule_id(gateway_id)


async def test_register_once_then_heartbeat(api: Api, project: ProjectKeys) -> None:
    created = await create_gateway(api, project.editor, proxy={"https_proxy": "http://p:1"})
    gateway_id = created["gateway"]["id"]
    identity = await register(api, created["registration_token"])
    assert identity["gateway_id"] == gateway_id
    assert identity["task_queue"] == gateway_queue(gateway_id)
    assert identity["frontdoor_address"] == api.settings.frontdoor_address
    assert "temporal_address" not in identity, "gateways never get Temporal's own address"
    # Its own codec key only: derived for this gateway, never one of the control plane's.
    [own] = identity["codec_keys"]
    assert own == gateway_key_spec(codec_key_specs(api.settings)[0], gateway_id)
    assert own not in codec_key_specs(api.settings)
    assert identity["proxy"]["https_proxy"] == "http://p:1"
    # It beats as often as the API expects: the API calls it offline after two missed beats.
    assert identity["heartbeat_interval"] == api.settings.gateway_heartbeat_interval
    again = await api.http.post(
        "/v1/gateways/register",
        json={"token": created["registration_token"], "hostname": "h", "version": "1"},
    )
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]

    secret = {"Authorization": f"Bearer {identity['gateway_secret']}"}
    beat = {"replica_id": "r1", "version": "0.2.0", "maas_reachable": {"http://maas/": True}}
    assert (
        await api.http.post(f"/v1/gateways/{gateway_id}/heartbeat", json=beat, headers=secret)
    ).status_code == 204
    wrong = await api.http.post(
        f"/v1/gateways/{gateway_id}/heartbeat", json=beat, headers=project.admin
    )
    assert wrong.status_code == 401
    got = (await api.http.get(f"/v1/gateways/{gateway_id}", headers=project.viewer)).json()
    assert got["version"] == "0.2.0"
    assert got["replica_heartbeats"][0]["replica_id"] == "r1"
    # Heartbeating alone is not enough: nothing polls its queue.
    assert got["status"] == "offline"
    assert "metalgate gateway run" in got["status_detail"]


async def test_expired_token_is_refused(api: Api, project: ProjectKeys) -> None:
    created = await create_gateway(api, project.editor, token_ttl_seconds=60)
    too_short = await api.http.post(
        "/v1/gateways", json={"name": "short", "token_ttl_seconds": 1}, headers=project.editor
    )
    assert too_short.status_code == 422
    assert too_short.json()["errors"][0]["field"] == "body.token_ttl_seconds"
    unknown = await api.http.post(
        "/v1/gateways/register", json={"token": "mgr_nope", "hostname": "h", "version": "1"}
    )
    assert unknown.status_code == 401
    assert created["gateway"]["status"] == "pending"


async def test_online_while_a_worker_polls(
    api: Api, project: ProjectKeys, env: WorkflowEnvironment
) -> None:
    created = await create_gateway(api, project.editor)
    gateway_id = created["gateway"]["id"]
    await register(api, created["registration_token"])
    async with Worker(
        env.client, task_queue=gateway_queue(gateway_id), activities=[check_account_standin]
    ):

        async def online() -> dict[str, Any]:
            got: dict[str, Any] = (
                await api.http.get(f"/v1/gateways/{gateway_id}", headers=project.viewer)
            ).json()
            assert got["status"] == "online", got
            return got

        got = await assert_eventually(online)
        assert got["replicas"] == 1
        assert got["last_seen"] is not None


async def test_list_includes_system_gateway_and_only_own(
    api: Api, project: ProjectKeys, other_project: ProjectKeys
) -> None:
    mine = await create_gateway(api, project.editor)
    theirs = await create_gateway(api, other_project.editor)
    listed = (await api.http.get("/v1/gateways", headers=project.viewer)).json()["items"]
    ids = [g["id"] for g in listed]
    assert ids[0] == SYSTEM_GATEWAY_ID and listed[0]["system"] is True
    assert mine["gateway"]["id"] in ids
    assert theirs["gateway"]["id"] not in ids
    hidden = await api.http.get(f"/v1/gateways/{theirs['gateway']['id']}", headers=project.admin)
    assert hidden.status_code == 404
    delete_theirs = await api.http.delete(
        f"/v1/gateways/{theirs['gateway']['id']}", headers=project.admin
    )
    assert delete_theirs.status_code == 404


async def test_roles_and_delete(api: Api, project: ProjectKeys) -> None:
    viewer_create = await api.http.post("/v1/gateways", json={"name": "v"}, headers=project.viewer)
    assert viewer_create.status_code == 403
    created = await create_gateway(api, project.editor)
    gateway_id = created["gateway"]["id"]
    dup = await api.http.post(
        "/v1/gateways", json={"name": created["gateway"]["name"]}, headers=project.editor
    )
    assert dup.status_code == 409
    assert (
        await api.http.delete(f"/v1/gateways/{gateway_id}", headers=project.viewer)
    ).status_code == 403
    assert (
        await api.http.delete(f"/v1/gateways/{gateway_id}", headers=project.editor)
    ).status_code == 204
    assert (
        await api.http.get(f"/v1/gateways/{gateway_id}", headers=project.viewer)
    ).status_code == 404
    system = await api.http.delete(f"/v1/gateways/{SYSTEM_GATEWAY_ID}", headers=project.admin)
    assert system.status_code == 409
