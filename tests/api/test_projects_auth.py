from __future__ import annotations

import importlib.metadata

import httpx

from tests.api.conftest import Api, ProjectKeys


async def test_health_and_readiness(api: Api) -> None:
    version = importlib.metadata.version("metalgate")
    assert (await api.http.get("/healthz")).json() == {"status": "ok", "version": version}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    # How many control-plane workers poll depends on what else uses the session's dev server.
    assert isinstance(body.pop("control_plane_pollers"), int)
    assert body == {"status": "ready", "store": "ok", "temporal": "ok"}


async def test_openapi_docs_served(api: Api) -> None:
    assert (await api.http.get("/docs")).status_code == 200
    spec = (await api.http.get("/openapi.json")).json()
    assert "/v1/clusters" in spec["paths"]


async def test_missing_and_wrong_keys_are_401(api: Api) -> None:
    missing = await api.http.get("/v1/clusters")
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await api.http.get("/v1/clusters", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["detail"]


async def test_only_the_operator_creates_projects(api: Api, project: ProjectKeys) -> None:
    refused = await api.http.post("/v1/projects", json={"name": "x"}, headers=project.admin)
    assert refused.status_code == 403
    dup = await api.http.post("/v1/projects", json={"name": "default"}, headers=api.admin)
    assert dup.status_code == 409
    assert dup.json()["detail"].startswith("name:")


async def test_project_names_are_validated(api: Api) -> None:
    bad = await api.http.post("/v1/projects", json={"name": "Not Valid"}, headers=api.admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.name"
    extra = await api.http.post("/v1/projects", json={"name": "ok", "x": 1}, headers=api.admin)
    assert extra.status_code == 422
    assert "unknown field" in extra.json()["detail"]


async def test_api_keys_by_role_and_project(
    api: Api, project: ProjectKeys, other_project: ProjectKeys
) -> None:
    made = await api.http.post(
        f"/v1/projects/{project.project_id}/api-keys",
        json={"name": "ci", "role": "editor"},
        headers=project.admin,
    )
    assert made.status_code == 201
    assert made.json()["key"].startswith("mgk_")
    for headers in (project.editor, project.viewer):
        denied = await api.http.post(
            f"/v1/projects/{project.project_id}/api-keys", json={"name": "x"}, headers=headers
        )
        assert denied.status_code == 403
        assert "needs admin" in denied.json()["detail"]
    elsewhere = await api.http.post(
        f"/v1/projects/{project.project_id}/api-keys",
        json={"name": "x"},
        headers=other_project.admin,
    )
    assert elsewhere.status_code == 404
    listed = await api.http.get("/v1/projects", headers=project.viewer)
    assert [p["id"] for p in listed.json()] == [project.project_id]


async def test_keys_are_stored_hashed(api: Api, project: ProjectKeys) -> None:
    key = project.admin["Authorization"].removeprefix("Bearer ")
    raw = (api.settings.resolved_data_dir() / "metalgate.db").read_bytes()
    assert key.encode() not in raw


async def test_bad_bodies_are_4xx_never_500(api: Api, project: ProjectKeys) -> None:
    not_json = await api.http.post(
        "/v1/clusters",
        content=b"{nope",
        headers={**project.editor, "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    huge = await api.http.post("/v1/projects", content=b"x" * (2 * 1024 * 1024), headers=api.admin)
    assert huge.status_code == 413
    assert "smaller body" in huge.json()["detail"]


async def test_streamed_oversized_body_is_413(api: Api) -> None:
    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    answer = await api.http.post("/v1/projects", content=chunks(), headers=api.admin)
    assert answer.status_code == 413


async def test_cors_preflight_for_the_temporal_ui(api: Api) -> None:
    origin = api.settings.codec_cors_origins[0]
    answer = await api.http.options(
        "/codec/decode",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    stranger = await api.http.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in stranger.headers
    assert isinstance(stranger, httpx.Response)
