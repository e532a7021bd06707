from __future__ import annotations

import uuid
from typing import Any

from temporalio.worker import Worker

from tests.api.conftest import Api, ProjectKeys
from tests.api.test_gateways import create_gateway, register

MAAS_KEY = "ck1:tk1:ts1secretvalue"


def account_body(**over: Any) -> dict[str, Any]:
    return {
        "name": f"acc-{uuid.uuid4().hex[:6]}",
        "maas_url": "http://maas.example:5240/MAAS/",
        "maas_api_key": MAAS_KEY,
        "use_system_gateway": True,
        **over,
    }


async def create_account(api: Api, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    answer = await api.http.post("/v1/cloud-accounts", json=account_body(**over), headers=headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_create_validates_through_the_gateway(
    api: Api, project: ProjectKeys, system_gateway: Worker
) -> None:
    created = await create_account(api, project.editor)
    assert created["gateway_id"] == "system"
    assert created["maas_version"] == "2.2.0"
    assert created["validated_at"] is not None
    assert "maas_api_key" not in created
    listed = (await api.http.get("/v1/cloud-accounts", headers=project.viewer)).json()["items"]
    assert created["id"] in [a["id"] for a in listed]
    one = await api.http.get(f"/v1/cloud-accounts/{created['id']}", headers=project.viewer)
    assert MAAS_KEY not in one.text
    raw = (api.settings.resolved_data_dir() / "metalgate.db").read_bytes()
    assert b"ts1secretvalue" not in raw


async def test_refused_key_names_the_field(
    api: Api, project: ProjectKeys, system_gateway: Worker
) -> None:
    answer = await api.http.post(
        "/v1/cloud-accounts", json=account_body(maas_api_key="bad:key:x"), headers=project.editor
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("maas_api_key:")


async def test_offline_gateway_answers_in_bounded_time_with_the_fix(
    api: Api, project: ProjectKeys
) -> None:
    gateway = await create_gateway(api, project.editor)
    pending = await api.http.post(
        "/v1/cloud-accounts",
        json=account_body(use_system_gateway=False, gateway_id=gateway["gateway"]["id"]),
        headers=project.editor,
    )
    assert pending.status_code == 503
    assert "never registered" in pending.json()["detail"]
    assert "metalgate gateway run" in pending.json()["detail"]
    await register(api, gateway["registration_token"])
    answer = await api.http.post(
        "/v1/cloud-accounts",
        json=account_body(use_system_gateway=False, gateway_id=gateway["gateway"]["id"]),
        headers=project.editor,
    )
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert f"gateway {gateway['gateway']['name']} is offline" in detail
    assert "metalgate gateway run" in detail


async def test_input_errors(api: Api, project: ProjectKeys, other_project: ProjectKeys) -> None:
    both = account_body(gateway_id="gw-x")
    answer = await api.http.post("/v1/cloud-accounts", json=both, headers=project.editor)
    assert answer.status_code == 422
    assert "either gateway_id" in answer.json()["detail"]
    shape = await api.http.post(
        "/v1/cloud-accounts", json=account_body(maas_api_key="nocolons"), headers=project.editor
    )
    assert shape.status_code == 422
    assert "consumer_key:token_key:token_secret" in shape.json()["detail"]
    url = await api.http.post(
        "/v1/cloud-accounts", json=account_body(maas_url="ftp://x"), headers=project.editor
    )
    assert url.status_code == 422
    assert url.json()["errors"][0]["field"] == "body.maas_url"
    theirs = await create_gateway(api, other_project.editor)
    foreign = await api.http.post(
        "/v1/cloud-accounts",
        json=account_body(use_system_gateway=False, gateway_id=theirs["gateway"]["id"]),
        headers=project.editor,
    )
    assert foreign.status_code == 404
    viewer = await api.http.post("/v1/cloud-accounts", json=account_body(), headers=project.viewer)
    assert viewer.status_code == 403


async def test_isolation_and_delete(
    api: Api, project: ProjectKeys, other_project: ProjectKeys, system_gateway: Worker
) -> None:
    created = await create_account(api, project.editor)
    path = f"/v1/cloud-accounts/{created['id']}"
    assert (await api.http.get(path, headers=other_project.admin)).status_code == 404
    assert (await api.http.delete(path, headers=other_project.admin)).status_code == 404
    dup = await api.http.post(
        "/v1/cloud-accounts", json=account_body(name=created["name"]), headers=project.editor
    )
    assert dup.status_code == 409
    assert (await api.http.delete(path, headers=project.viewer)).status_code == 403
    assert (await api.http.delete(path, headers=project.editor)).status_code == 204
    assert (await api.http.get(path, headers=project.viewer)).status_code == 404
