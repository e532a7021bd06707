from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.maas import maas_key_purpose
from domain.naming import gateway_queue
from domain.phases import Phase, Reason
from domain.sealing import SealingError, SealingKeyPair, key_fingerprint
from store.db import Database
from store.models import CloudAccount, Cluster
from store.secrets import SecretBox
from tests.api.conftest import Api, ProjectKeys
from tests.api.standins import check_account_standin
from tests.api.test_gateways import create_gateway, register
from tests.support.api_server import STANDIN_GATEWAY_KEYS

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


async def _store(api: Api) -> Database:
    return await Database.open(api.settings)


async def test_the_key_is_kept_only_sealed_to_the_gateway(
    api: Api, project: ProjectKeys, system_gateway: Worker
) -> None:
    created = await create_account(api, project.editor)
    assert created["maas_api_key_sealed"] is True
    assert created["maas_api_key_fingerprint"] == key_fingerprint(MAAS_KEY)
    database = await _store(api)
    try:
        async with database.sessions() as session:
            row = await session.get(CloudAccount, created["id"])
    finally:
        await database.close()
    assert row is not None and row.maas_api_key_sealed is not None
    assert row.maas_api_key_enc == "", "no copy the control plane could open"
    purpose = maas_key_purpose(created["maas_url"])
    assert STANDIN_GATEWAY_KEYS.open(row.maas_api_key_sealed, purpose) == MAAS_KEY
    with pytest.raises(SealingError):
        SealingKeyPair.generate().open(row.maas_api_key_sealed, purpose)


async def test_move_reseals_for_the_new_gateway_and_its_clusters_follow(
    api: Api, project: ProjectKeys, env: WorkflowEnvironment, system_gateway: Worker
) -> None:
    created = await create_account(api, project.editor)
    path = f"/v1/cloud-accounts/{created['id']}"
    cluster_id = f"cl-{uuid.uuid4().hex[:8]}"
    database = await _store(api)
    try:
        async with database.sessions.begin() as session:
            session.add(
                Cluster(
                    id=cluster_id,
                    project_id=project.project_id,
                    name=cluster_id,
                    active_name=cluster_id,
                    cloud_account_id=created["id"],
                    gateway_id="system",
                    spec={},
                    phase=Phase.RUNNING.value,
                    reason=Reason.GATEWAY_REVOKED.value,
                    message="gateway was revoked",
                    kubernetes_version="v1.30.4",
                )
            )
            stored = await session.get(CloudAccount, created["id"])
            assert stored is not None
            before = stored.maas_api_key_sealed
        gateway = await create_gateway(api, project.editor)
        gateway_id = gateway["gateway"]["id"]
        keyless = await api.http.patch(
            path, json={"gateway_id": gateway_id}, headers=project.editor
        )
        assert keyless.status_code == 422, "a move needs the key: nothing can re-seal it"
        await register(api, gateway["registration_token"])
        async with Worker(
            env.client, task_queue=gateway_queue(gateway_id), activities=[check_account_standin]
        ):
            moved = await api.http.patch(
                path,
                json={"gateway_id": gateway_id, "maas_api_key": MAAS_KEY},
                headers=project.editor,
            )
        assert moved.status_code == 200, moved.text
        assert moved.json()["gateway_id"] == gateway_id
        async with database.sessions() as session:
            account = await session.get(CloudAccount, created["id"])
            cluster = await session.get(Cluster, cluster_id)
    finally:
        await database.close()
    assert account is not None and cluster is not None
    assert account.maas_api_key_sealed not in (None, before)
    assert (cluster.gateway_id, cluster.reason) == (gateway_id, None)
    await api.http.post(f"/v1/gateways/{gateway_id}/revoke", headers=project.editor)
    revoked = await api.http.patch(
        path, json={"gateway_id": gateway_id, "maas_api_key": MAAS_KEY}, headers=project.editor
    )
    assert revoked.status_code == 409 and "revoked" in revoked.json()["detail"]


async def test_accounts_stored_before_sealing_are_sealed_when_their_gateway_registers(
    api: Api, project: ProjectKeys
) -> None:
    gateway = await create_gateway(api, project.editor)
    gateway_id = gateway["gateway"]["id"]
    box = SecretBox.from_settings(api.settings)
    account_id = f"acc-{uuid.uuid4().hex[:8]}"
    database = await _store(api)
    try:
        async with database.sessions.begin() as session:
            session.add(
                CloudAccount(
                    id=account_id,
                    project_id=project.project_id,
                    name=account_id,
                    maas_url="http://maas.example:5240/MAAS/",
                    maas_api_key_enc=box.encrypt(MAAS_KEY),
                    gateway_id=gateway_id,
                )
            )
        await register(api, gateway["registration_token"])
        async with database.sessions() as session:
            row = await session.get(CloudAccount, account_id)
    finally:
        await database.close()
    assert row is not None and row.maas_api_key_sealed is not None
    assert row.maas_api_key_enc == ""
    assert row.maas_api_key_fingerprint == key_fingerprint(MAAS_KEY)
    opened = STANDIN_GATEWAY_KEYS.open(row.maas_api_key_sealed, maas_key_purpose(row.maas_url))
    assert opened == MAAS_KEY
