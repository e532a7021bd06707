from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.models import RecordStatusInput
from domain.maas import Machine, maas_key_purpose
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    SA_CLUSTER_PHASE,
    SA_GATEWAY_ID,
    SA_PROJECT,
    create_workflow_id,
    delete_workflow_id,
    gateway_queue,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.standins import ManageStandIn, check_account_standin
from tests.api.test_accounts import MAAS_KEY, create_account
from tests.api.test_gateways import create_gateway, register
from tests.support.api_server import STANDIN_GATEWAY_KEYS


def spec(name: str | None = None, **over: Any) -> dict[str, Any]:
    return {
        "name": name or f"c-{uuid.uuid4().hex[:6]}",
        "kubernetes_version": "v1.30.4",
        "control_plane": {"name": "control-plane", "count": 1},
        "worker_pools": [{"name": "workers", "count": 2}],
        **over,
    }


@pytest.fixture(scope="module")
async def account(api: Api, project: ProjectKeys, system_gateway: Worker) -> dict[str, Any]:
    return await create_account(api, project.editor)


async def create_cluster(
    api: Api, headers: dict[str, str], account: dict[str, Any], **over: Any
) -> dict[str, Any]:
    body = {**spec(), "cloud_account_id": account["id"], **over}
    answer = await api.http.post("/v1/clusters", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_create_starts_one_saga(
    api: Api, project: ProjectKeys, account: dict[str, Any], env: WorkflowEnvironment
) -> None:
    body = {**spec(), "cloud_account_id": account["id"]}
    first = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    assert first.status_code == 202, first.text
    cluster = first.json()
    assert cluster["phase"] == "Pending"
    assert cluster["create_workflow_id"] == create_workflow_id(cluster["id"])
    assert cluster["temporal_ui_url"].endswith(f"/workflows/cluster%2F{cluster['id']}%2Fcreate")
    handle = env.client.get_workflow_handle(create_workflow_id(cluster["id"]))
    described = await handle.describe()
    assert described.task_queue == CONTROL_PLANE_QUEUE
    attrs = described.typed_search_attributes
    assert attrs.get(SA_PROJECT) == project.project_id
    assert attrs.get(SA_GATEWAY_ID) == "system"
    assert attrs.get(SA_CLUSTER_PHASE) == "Pending"
    # The same request again (a lost answer retried) joins the same run.
    again = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    assert again.status_code == 202
    assert again.json()["id"] == cluster["id"]
    assert (await handle.describe()).run_id == described.run_id
    # The same name with another spec is a conflict.
    other = {**body, "worker_pools": []}
    conflict = await api.http.post("/v1/clusters", json=other, headers=project.editor)
    assert conflict.status_code == 409
    assert conflict.json()["detail"].startswith("name:")


async def test_a_repeated_create_after_its_delete_is_refused(
    api: Api, project: ProjectKeys, account: dict[str, Any], env: WorkflowEnvironment
) -> None:
    body = {**spec(), "cloud_account_id": account["id"]}
    cluster = (await api.http.post("/v1/clusters", json=body, headers=project.editor)).json()
    deleted = await api.http.delete(f"/v1/clusters/{cluster['id']}", headers=project.editor)
    assert deleted.status_code == 202, deleted.text
    # Before: a late retry of the POST (its first answer lost) counted as "the same request"
    # while the cluster was still Pending, and started a create the delete never cancelled.
    again = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    assert again.status_code == 409, again.text
    assert again.json()["detail"].startswith("name:") and "deleted" in again.json()["detail"]


async def test_history_never_holds_the_maas_key(
    api: Api, project: ProjectKeys, account: dict[str, Any], env: WorkflowEnvironment
) -> None:
    cluster = await create_cluster(api, project.editor, account)
    history = await env.client.get_workflow_handle(
        create_workflow_id(cluster["id"])
    ).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert MAAS_KEY.encode() not in raw


async def test_spec_errors_name_the_field(
    api: Api, project: ProjectKeys, account: dict[str, Any]
) -> None:
    bad_count = {
        **spec(control_plane={"name": "cp", "count": 2}),
        "cloud_account_id": account["id"],
    }
    answer = await api.http.post("/v1/clusters", json=bad_count, headers=project.editor)
    assert answer.status_code == 422
    assert "control_plane" in answer.json()["detail"]
    assert "odd quorum" in answer.json()["detail"]
    no_account = await api.http.post("/v1/clusters", json=spec(), headers=project.editor)
    assert no_account.status_code == 422
    assert no_account.json()["errors"][0]["field"] == "body.cloud_account_id"
    unknown = await api.http.post(
        "/v1/clusters", json={**spec(), "cloud_account_id": "acc-nope"}, headers=project.editor
    )
    assert unknown.status_code == 404
    assert "cloud account" in unknown.json()["detail"]


async def test_list_filter_and_pages(
    api: Api, project: ProjectKeys, account: dict[str, Any]
) -> None:
    for _ in range(3):
        await create_cluster(api, project.editor, account)
    page = (await api.http.get("/v1/clusters?limit=2&phase=Pending", headers=project.viewer)).json()
    assert len(page["items"]) == 2 and page["total"] >= 3
    rest = (
        await api.http.get("/v1/clusters?limit=2&offset=2&phase=Pending", headers=project.viewer)
    ).json()
    assert {c["id"] for c in rest["items"]}.isdisjoint({c["id"] for c in page["items"]})
    running = (await api.http.get("/v1/clusters?phase=Running", headers=project.viewer)).json()
    assert all(c["phase"] == "Running" for c in running["items"])
    bad = await api.http.get("/v1/clusters?phase=Sleeping", headers=project.viewer)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.phase"


async def test_isolation(
    api: Api, project: ProjectKeys, other_project: ProjectKeys, account: dict[str, Any]
) -> None:
    cluster = await create_cluster(api, project.editor, account)
    base = f"/v1/clusters/{cluster['id']}"
    for method, path in [
        ("GET", base),
        ("DELETE", base),
        ("GET", f"{base}/kubeconfig"),
        ("GET", f"{base}/events"),
        ("POST", f"{base}/upgrade"),
    ]:
        body = {"kubernetes_version": "v1.31.0"} if path.endswith("upgrade") else None
        assert (
            await api.http.request(method, path, headers=other_project.admin, json=body)
        ).status_code == 404
        assert (await api.http.request(method, path, json=body)).status_code == 401
    theirs = (await api.http.get("/v1/clusters", headers=other_project.viewer)).json()
    assert cluster["id"] not in [c["id"] for c in theirs["items"]]
    assert (await api.http.delete(base, headers=project.viewer)).status_code == 403
    assert (await api.http.get(f"{base}/kubeconfig", headers=project.viewer)).status_code == 403
    foreign_account = await api.http.post(
        "/v1/clusters",
        json={**spec(), "cloud_account_id": account["id"]},
        headers=other_project.editor,
    )
    assert foreign_account.status_code == 404


async def test_status_events_and_lifecycle_actions(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster = await create_cluster(api, project.editor, account)
    base = f"/v1/clusters/{cluster['id']}"
    early = await api.http.post(
        f"{base}/upgrade", json={"kubernetes_version": "v1.31.0"}, headers=project.editor
    )
    assert early.status_code == 409
    assert "needs a Running cluster" in early.json()["detail"]
    no_kubeconfig = await api.http.get(f"{base}/kubeconfig", headers=project.editor)
    assert no_kubeconfig.status_code == 409

    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(
            cluster_id=cluster["id"],
            phase=Phase.ACQUIRING_MACHINES,
            reason=Reason.WAITING_FOR_GATEWAY,
            message="waiting for gateway system",
            event="waiting",
        ),
    )
    got = (await api.http.get(base, headers=project.viewer)).json()
    assert got["phase"] == "AcquiringMachines"
    assert got["reason"] == "WaitingForGateway"
    assert "metalgate gateway run" in got["hint"]
    assert got["conditions"][-1]["type"] == "MachinesAcquired"
    assert got["conditions"][-1]["reason"] == "WaitingForGateway"
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(
            cluster_id=cluster["id"],
            phase=Phase.RUNNING,
            event="running",
            machines=[Machine(system_id="m1", hostname="node-1", pool="workers")],
        ),
    )
    running = (await api.http.get(base, headers=project.viewer)).json()
    # Cluster API's style: every gate the create passed is True, none still shows waiting.
    assert [(c["type"], c["status"]) for c in running["conditions"]] == [
        ("MachinesAcquired", "True"),
        ("OSDeployed", "True"),
        ("ControlPlaneReady", "True"),
        ("NodesReady", "True"),
        ("AgentConnected", "True"),
    ]
    events = (await api.http.get(f"{base}/events", headers=project.viewer)).json()["items"]
    assert [e["message"] for e in events] == ["cluster accepted", "waiting", "running"]
    after = (
        await api.http.get(f"{base}/events?after={events[0]['id']}", headers=project.viewer)
    ).json()
    assert len(after["items"]) == 2

    gone = await api.http.post(
        f"{base}/scale", json={"pool": "workers", "count": 3}, headers=project.editor
    )
    assert gone.status_code == 409
    assert "not under management" in gone.json()["detail"]
    await env.client.start_workflow(
        ManageStandIn.run,
        cluster["id"],
        id=manage_workflow_id(cluster["id"]),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    upgrade = await api.http.post(
        f"{base}/upgrade", json={"kubernetes_version": "v1.31.0"}, headers=project.editor
    )
    assert upgrade.status_code == 200, upgrade.text
    assert upgrade.json() == {"action_id": "a1", "kind": "upgrade", "message": "v1.31.0"}
    refused = await api.http.post(
        f"{base}/upgrade", json={"kubernetes_version": "v1.0.0"}, headers=project.editor
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.kubernetes_version"
    assert "not a supported version" in refused.json()["detail"]
    scale = await api.http.post(
        f"{base}/scale", json={"pool": "workers", "count": 3}, headers=project.editor
    )
    assert scale.json()["message"] == "workers=3"
    repave = await api.http.post(f"{base}/repave", json={"node": "node-1"}, headers=project.editor)
    assert repave.json()["kind"] == "repave"
    negative = await api.http.post(
        f"{base}/scale", json={"pool": "workers", "count": -1}, headers=project.editor
    )
    assert negative.status_code == 422
    viewer = await api.http.post(f"{base}/repave", json={"node": "n"}, headers=project.viewer)
    assert viewer.status_code == 403
    got = (await api.http.get(base, headers=project.viewer)).json()
    assert got["temporal_ui_url"].endswith("%2Fmanage")


async def test_delete_starts_the_delete_saga(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster = await create_cluster(api, project.editor, account)
    base = f"/v1/clusters/{cluster['id']}"
    answer = await api.http.delete(base, headers=project.editor)
    assert answer.status_code == 202
    assert answer.json()["delete_requested_at"] is not None
    handle = env.client.get_workflow_handle(delete_workflow_id(cluster["id"]))
    # The stand-in answers with the key it was handed: sealed to the account's gateway,
    # which alone opens it.
    sealed = await handle.result()
    assert MAAS_KEY not in sealed
    assert STANDIN_GATEWAY_KEYS.open(sealed, maas_key_purpose(account["maas_url"])) == MAAS_KEY
    assert (await api.http.delete(base, headers=project.editor)).status_code == 202
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.DELETED),
    )
    deleted = await api.http.delete(base, headers=project.editor)
    assert deleted.json()["phase"] == "Deleted"
    # The repeat before Deleted may have started a second, harmless run: it completes too.
    latest = env.client.get_workflow_handle(delete_workflow_id(cluster["id"]))
    await latest.result()
    assert (await latest.describe()).status == WorkflowExecutionStatus.COMPLETED
    # A Deleted cluster frees its name.
    reused = await create_cluster(api, project.editor, account, name=cluster["name"])
    assert reused["id"] != cluster["id"]


async def test_account_and_gateway_in_use_cannot_be_deleted(
    api: Api, project: ProjectKeys, account: dict[str, Any], env: WorkflowEnvironment
) -> None:
    await create_cluster(api, project.editor, account)
    answer = await api.http.delete(f"/v1/cloud-accounts/{account['id']}", headers=project.editor)
    assert answer.status_code == 409
    assert "delete them first" in answer.json()["detail"]
    gateway = await create_gateway(api, project.editor)
    gateway_id = gateway["gateway"]["id"]
    await register(api, gateway["registration_token"])
    async with Worker(
        env.client, task_queue=gateway_queue(gateway_id), activities=[check_account_standin]
    ):
        pcg_account = await create_account(
            api, project.editor, use_system_gateway=False, gateway_id=gateway_id
        )
    cluster = await create_cluster(api, project.editor, pcg_account)
    assert cluster["gateway_id"] == gateway_id
    refused = await api.http.delete(f"/v1/gateways/{gateway_id}", headers=project.editor)
    assert refused.status_code == 409
    assert "1 cluster(s)" in refused.json()["detail"]
