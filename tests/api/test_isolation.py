"""Every authenticated route against every wrong caller: no key, a wrong key, an agent
token, a viewer key where writing, and another project's key on this project's objects."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.models import EnqueueAgentCommandInput, IssueAgentTokenInput, RecordStatusInput
from domain.maas import Machine
from domain.phases import Phase
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.test_accounts import create_account
from tests.api.test_clusters import create_cluster
from tests.api.test_gateways import create_gateway

VIEW, EDIT, ADMIN, OPERATOR = "viewer", "editor", "admin", "operator"


@pytest.fixture(scope="module")
async def objects(
    api: Api, project: ProjectKeys, system_gateway: Worker, cp_activities: ControlPlaneActivities
) -> dict[str, Any]:
    account = await create_account(api, project.editor)
    cluster = await create_cluster(api, project.editor, account)
    gateway = await create_gateway(api, project.editor)
    token = await run_activity(
        cp_activities.issue_agent_token, IssueAgentTokenInput(cluster_id=cluster["id"])
    )
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(
            cluster_id=cluster["id"],
            phase=Phase.DEPLOYING_OS,
            machines=[Machine(system_id="s1", hostname="n", pool="control-plane")],
        ),
    )
    other = await create_cluster(api, project.editor, account)
    other_token = await run_activity(
        cp_activities.issue_agent_token, IssueAgentTokenInput(cluster_id=other["id"])
    )
    await run_activity(
        cp_activities.enqueue_agent_command,
        EnqueueAgentCommandInput(cluster_id=cluster["id"], command_id="iso-1", kind="repave"),
    )
    return {
        "account": account["id"],
        "cluster": cluster["id"],
        "gateway": gateway["gateway"]["id"],
        "agent": {"Authorization": f"Bearer {token.token}"},
        "other_agent": {"Authorization": f"Bearer {other_token.token}"},
    }


# (method, path template, body, least role, path names an object of the project)
ROUTES: list[tuple[str, str, dict[str, Any] | None, str, bool]] = [
    ("GET", "/v1/projects", None, VIEW, False),
    ("POST", "/v1/projects", {"name": "iso"}, OPERATOR, False),
    ("POST", "/v1/projects/{project}/api-keys", {"name": "k"}, ADMIN, True),
    ("GET", "/v1/gateways", None, VIEW, False),
    ("POST", "/v1/gateways", {"name": "iso-gw"}, EDIT, False),
    ("GET", "/v1/gateways/{gateway}", None, VIEW, True),
    ("DELETE", "/v1/gateways/{gateway}", None, EDIT, True),
    ("GET", "/v1/cloud-accounts", None, VIEW, False),
    (
        "POST",
        "/v1/cloud-accounts",
        {"name": "a", "maas_url": "http://m/", "maas_api_key": "a:b:c", "use_system_gateway": True},
        EDIT,
        False,
    ),
    ("GET", "/v1/cloud-accounts/{account}", None, VIEW, True),
    ("DELETE", "/v1/cloud-accounts/{account}", None, EDIT, True),
    ("GET", "/v1/clusters", None, VIEW, False),
    ("POST", "/v1/clusters", {"name": "iso", "cloud_account_id": "{account}"}, EDIT, True),
    ("GET", "/v1/clusters/{cluster}", None, VIEW, True),
    ("DELETE", "/v1/clusters/{cluster}", None, EDIT, True),
    ("GET", "/v1/clusters/{cluster}/kubeconfig", None, EDIT, True),
    ("GET", "/v1/clusters/{cluster}/events", None, VIEW, True),
    ("POST", "/v1/clusters/{cluster}/upgrade", {"kubernetes_version": "v1.31.0"}, EDIT, True),
    ("POST", "/v1/clusters/{cluster}/scale", {"pool": "workers", "count": 1}, EDIT, True),
    ("POST", "/v1/clusters/{cluster}/repave", {"node": "n"}, EDIT, True),
    ("POST", "/v1/clusters/{cluster}/nodes/n/cordon", None, EDIT, True),
    ("POST", "/v1/clusters/{cluster}/nodes/n/drain", None, EDIT, True),
    ("POST", "/v1/clusters/{cluster}/nodes/n/uncordon", None, EDIT, True),
    ("POST", "/codec/encode", {"payloads": []}, OPERATOR, False),
    ("POST", "/codec/decode", {"payloads": []}, OPERATOR, False),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "least", "scoped"), ROUTES)
async def test_wrong_callers_are_refused(
    api: Api,
    project: ProjectKeys,
    other_project: ProjectKeys,
    objects: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    least: str,
    scoped: bool,
) -> None:
    names = {
        "project": project.project_id,
        **{k: v for k, v in objects.items() if isinstance(v, str)},
    }
    url, payload = _fill(path, names), _fill(body, names)

    async def call(headers: dict[str, str] | None) -> int:
        answer = await api.http.request(method, url, json=payload, headers=headers)
        assert answer.status_code < 500, answer.text
        assert "detail" in answer.json() or answer.status_code < 300
        return answer.status_code

    assert await call(None) == 401
    assert await call({"Authorization": "Bearer mgk_wrong"}) == 401
    assert await call(objects["agent"]) == 401
    if least != VIEW:
        assert await call(project.viewer) == 403
    if least == OPERATOR:
        assert await call(project.admin) == 403
    if scoped:
        assert await call(other_project.admin) == 404


AGENT_ROUTES = [
    ("POST", "/v1/agent/heartbeat", {"node": {"hostname": "n"}}),
    ("POST", "/v1/agent/status", {"node": {"hostname": "n"}}),
    ("GET", "/v1/agent/commands", None),
    ("POST", "/v1/agent/commands/iso-1", {"state": "running"}),
]


@pytest.mark.parametrize(("method", "path", "body"), AGENT_ROUTES)
async def test_agent_routes_take_only_their_cluster_token(
    api: Api, project: ProjectKeys, objects: dict[str, Any], method: str, path: str, body: Any
) -> None:
    for headers in (None, api.admin, project.admin, {"Authorization": "Bearer mga_wrong"}):
        answer = await api.http.request(method, path, json=body, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
    other = await api.http.request(method, path, json=body, headers=objects["other_agent"])
    if path.endswith("iso-1"):
        assert other.status_code == 404  # another cluster's command
    elif method == "GET":
        assert other.json()["commands"] == []
    mine = await api.http.request(method, path, json=body, headers=objects["agent"])
    assert mine.status_code == 200, mine.text


async def test_gateway_routes_take_only_their_own_credentials(
    api: Api, project: ProjectKeys, objects: dict[str, Any]
) -> None:
    beat = {"replica_id": "r", "version": "1"}
    path = f"/v1/gateways/{objects['gateway']}/heartbeat"
    for headers in (None, api.admin, project.admin, objects["agent"]):
        assert (await api.http.post(path, json=beat, headers=headers)).status_code == 401
    register = {
        "token": project.admin["Authorization"].removeprefix("Bearer "),
        "hostname": "h",
        "version": "1",
    }
    assert (await api.http.post("/v1/gateways/register", json=register)).status_code == 401
