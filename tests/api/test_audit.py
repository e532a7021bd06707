"""The audit log records every mutating route and every refusal, and never a secret."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from store.db import Database
from store.models import AuditEntry
from tests.api.conftest import Api, ProjectKeys


async def audit(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await api.http.get("/v1/audit", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


async def test_mutations_and_refusals_are_recorded_without_secrets(
    api: Api, project: ProjectKeys, other_project: ProjectKeys
) -> None:
    secrets: list[str] = []
    made = await api.http.post(
        f"/v1/projects/{project.project_id}/api-keys",
        json={"name": "audited", "role": "editor"},
        headers=project.admin,
    )
    secrets.append(made.json()["key"])
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    gateway = await api.http.post(
        "/v1/gateways",
        json={"name": f"gw-{uuid.uuid4().hex[:6]}"},
        headers={**project.editor, "X-Request-ID": request_id},
    )
    assert gateway.headers["x-request-id"] == request_id
    token = gateway.json()["registration_token"]
    secrets.append(token)
    identity = (
        await api.http.post(
            "/v1/gateways/register", json={"token": token, "hostname": "h", "version": "1"}
        )
    ).json()
    secrets.append(identity["gateway_secret"])
    secrets += identity["codec_keys"]
    gateway_id = identity["gateway_id"]
    # A MAAS key in a request body (the account may be refused; the body must not leak).
    maas_key = f"{uuid.uuid4().hex[:18]}:{uuid.uuid4().hex[:18]}:{uuid.uuid4().hex[:32]}"
    secrets.append(maas_key)
    await api.http.post(
        "/v1/accounts",
        json={"name": "m", "maas_url": "http://maas.invalid/MAAS/", "maas_api_key": maas_key,
              "gateway_id": gateway_id},
        headers=project.editor,
    )  # fmt: skip
    # Refusals: a wrong key, a viewer writing, another project's admin reading our keys.
    wrong = f"mgk_{uuid.uuid4().hex}"
    secrets.append(wrong)
    assert (
        await api.http.get("/v1/gateways", headers={"Authorization": f"Bearer {wrong}"})
    ).status_code == 401
    assert (
        await api.http.post("/v1/gateways", json={"name": "nope"}, headers=project.viewer)
    ).status_code == 403
    await api.http.post(f"/v1/gateways/{gateway_id}/revoke", headers=project.editor)

    page = await audit(api, project.admin, limit=500)
    actions = {(e["action"], e["outcome"]) for e in page["items"]}
    assert ("POST /v1/projects/{project_id}/api-keys", "ok") in actions
    assert ("POST /v1/gateways", "ok") in actions
    assert ("POST /v1/gateways", "refused") in actions, "the viewer's refused write"
    assert ("POST /v1/gateways/{gateway_id}/revoke", "ok") in actions
    created = next(e for e in page["items"] if e["request_id"] == request_id)
    assert created["actor_kind"] == "api_key" and created["actor_name"] == "editor"
    assert created["project_id"] == project.project_id
    revoke = next(e for e in page["items"] if e["action"].endswith("/revoke"))
    assert revoke["target"] == f"gateway_id={gateway_id}"
    registered = next(e for e in page["items"] if e["action"] == "POST /v1/gateways/register")
    assert registered["actor_kind"] == "gateway" and registered["actor_id"] == gateway_id

    operator = await audit(api, api.admin, outcome="refused", limit=500)
    assert any(
        e["actor_kind"] == "anonymous" and e["status_code"] == 401 for e in operator["items"]
    )
    theirs = await audit(api, other_project.admin, limit=500)
    assert all(e["project_id"] == other_project.project_id for e in theirs["items"])

    database = await Database.open(api.settings)
    try:
        async with database.sessions() as session:
            rows = (await session.scalars(select(AuditEntry))).all()
    finally:
        await database.close()
    dump = "\n".join(
        " ".join(str(getattr(r, c.name)) for c in AuditEntry.__table__.columns) for r in rows
    )
    for secret in secrets:
        assert secret not in dump
        assert secret.split(":")[-1] not in dump


async def test_filters_and_paging(api: Api, project: ProjectKeys) -> None:
    for n in range(5):
        await api.http.post(
            "/v1/gateways",
            json={"name": f"page-{n}-{uuid.uuid4().hex[:4]}"},
            headers=project.editor,
        )
    first = await audit(api, project.admin, action="POST /v1/gateways", outcome="ok", limit=2)
    assert len(first["items"]) == 2 and first["next_before"]
    second = await audit(
        api, project.admin, action="POST /v1/gateways", limit=2, before=first["next_before"]
    )
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    assert (await api.http.get("/v1/audit", headers=project.viewer)).status_code == 403
    naive = await api.http.get(
        "/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=project.admin
    )
    assert naive.status_code == 422 and "since" in naive.text
