"""API key lifecycle: list without secrets, expiry, revoke at once on every API replica."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from store.db import Database
from store.models import ApiKey
from store.types import utcnow
from tests.api.conftest import Api, ProjectKeys
from tests.support.api_server import running_api
from tests.support.ports import free_port


async def make_key(api: Api, project: ProjectKeys, **body: object) -> dict[str, object]:
    made = await api.http.post(
        f"/v1/projects/{project.project_id}/api-keys",
        json={"name": "ci", "role": "editor", **body},
        headers=project.admin,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_list_shows_metadata_never_secrets(api: Api, project: ProjectKeys) -> None:
    made = await make_key(api, project, expires_in_days=30)
    secret = str(made["key"])
    used = await api.http.get("/v1/gateways", headers={"Authorization": f"Bearer {secret}"})
    assert used.status_code == 200
    listed = await api.http.get(
        f"/v1/projects/{project.project_id}/api-keys", headers=project.admin
    )
    assert listed.status_code == 200
    assert secret not in listed.text
    mine = next(k for k in listed.json() if k["id"] == made["id"])
    assert mine["name"] == "ci" and mine["role"] == "editor"
    assert mine["created_at"] and mine["last_used_at"], "the use above is recorded"
    assert mine["expires_at"] and mine["expires_at"] > mine["created_at"]
    assert "key" not in mine and "key_hash" not in mine


async def test_viewers_and_other_projects_cannot_see_keys(
    api: Api, project: ProjectKeys, other_project: ProjectKeys
) -> None:
    path = f"/v1/projects/{project.project_id}/api-keys"
    assert (await api.http.get(path, headers=project.viewer)).status_code == 403
    assert (await api.http.get(path, headers=other_project.admin)).status_code == 404


async def test_revoke_is_immediate_on_every_replica(api: Api, project: ProjectKeys) -> None:
    made = await make_key(api, project)
    headers = {"Authorization": f"Bearer {made['key']}"}
    # A second API replica on the same store.
    second = api.settings.model_copy(
        update={"api_port": (port := free_port()), "api_url": f"http://127.0.0.1:{port}"}
    )
    async with running_api(second) as url, httpx.AsyncClient(base_url=url) as replica:
        assert (await replica.get("/v1/gateways", headers=headers)).status_code == 200
        assert (await api.http.get("/v1/gateways", headers=headers)).status_code == 200
        revoked = await api.http.delete(
            f"/v1/projects/{project.project_id}/api-keys/{made['id']}", headers=project.admin
        )
        assert revoked.status_code == 204
        for http in (api.http, replica):
            answer = await http.get("/v1/gateways", headers=headers)
            assert answer.status_code == 401, "revoked keys stop at once, on every replica"
            assert "invalid API key (unknown or revoked)" in answer.json()["detail"]
    listed = await api.http.get(
        f"/v1/projects/{project.project_id}/api-keys", headers=project.admin
    )
    assert made["id"] not in {k["id"] for k in listed.json()}


async def test_an_expired_key_is_refused_and_says_so(api: Api, project: ProjectKeys) -> None:
    made = await make_key(api, project, expires_in_days=1)
    database = await Database.open(api.settings)
    try:
        async with database.sessions.begin() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.id == made["id"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    finally:
        await database.close()
    answer = await api.http.get("/v1/gateways", headers={"Authorization": f"Bearer {made['key']}"})
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


async def test_bad_expiry_names_the_field(api: Api, project: ProjectKeys) -> None:
    answer = await api.http.post(
        f"/v1/projects/{project.project_id}/api-keys",
        json={"name": "x", "expires_in_days": 0},
        headers=project.admin,
    )
    assert answer.status_code == 422
    assert "expires_in_days" in answer.text


async def test_the_operator_key_is_not_revocable_through_the_api(api: Api) -> None:
    keys = await api.http.get("/v1/projects", headers=api.admin)
    default = keys.json()[0]["id"]
    listed = await api.http.get(f"/v1/projects/{default}/api-keys", headers=api.admin)
    operator = next(k for k in listed.json() if k["name"] == "bootstrap-admin")
    answer = await api.http.delete(
        f"/v1/projects/{default}/api-keys/{operator['id']}", headers=api.admin
    )
    assert answer.status_code == 409
