"""Pause / resume of management and the nodes view, through the routes."""

from __future__ import annotations

from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.models import RecordStatusInput
from domain.agent_wire import NodeReport
from domain.maas import Machine
from domain.naming import CONTROL_PLANE_QUEUE, manage_workflow_id
from domain.phases import Phase
from domain.remediation import ObservedNode
from store.db import Database
from store.models import AgentNode
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.standins import ManageStandIn
from tests.api.test_accounts import create_account
from tests.api.test_clusters import create_cluster


async def _running(
    api: Api, project: ProjectKeys, cp_activities: Any, machines: list[Machine] | None = None
) -> str:
    account = await create_account(api, project.editor)
    cluster = await create_cluster(api, project.editor, account)
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING, machines=machines),
    )
    return str(cluster["id"])


async def test_pause_refuses_actions_until_resumed(
    api: Api,
    project: ProjectKeys,
    system_gateway: Worker,
    cp_activities: Any,
    env: WorkflowEnvironment,
) -> None:
    cluster_id = await _running(api, project, cp_activities)
    base = f"/v1/clusters/{cluster_id}"
    not_yet = await api.http.post(f"{base}/pause", headers=project.editor)
    assert not_yet.status_code == 409 and "not under management" in not_yet.json()["detail"]
    await env.client.start_workflow(
        ManageStandIn.run,
        cluster_id,
        id=manage_workflow_id(cluster_id),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    viewer = await api.http.post(f"{base}/pause", headers=project.viewer)
    assert viewer.status_code == 403
    paused = await api.http.post(f"{base}/pause", headers=project.editor)
    assert paused.status_code == 200, paused.text
    assert paused.json()["kind"] == "pause"
    shown = (await api.http.get(base, headers=project.viewer)).json()
    assert shown["management_paused"] is True and shown["management_paused_at"]
    upgrade = {"kubernetes_version": "v1.31.0"}
    refused = await api.http.post(f"{base}/upgrade", json=upgrade, headers=project.editor)
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    resumed = await api.http.post(f"{base}/resume", headers=project.editor)
    assert resumed.json()["kind"] == "resume"
    shown = (await api.http.get(base, headers=project.viewer)).json()
    assert shown["management_paused"] is False and shown["management_paused_at"] is None
    accepted = await api.http.post(f"{base}/upgrade", json=upgrade, headers=project.editor)
    assert accepted.status_code == 200, accepted.text
    events = (await api.http.get(f"{base}/events", headers=project.viewer)).json()["items"]
    assert [e["message"] for e in events][-2:] == ["management paused", "management resumed"]


async def test_nodes_join_machines_with_agent_reports(
    api: Api, project: ProjectKeys, system_gateway: Worker, cp_activities: Any
) -> None:
    machines = [
        Machine(
            system_id="m1", hostname="cp-1", pool="control-plane", zone="az1", status="Deployed"
        ),
        Machine(
            system_id="m2",
            hostname="w-1",
            pool="workers",
            zone="az2",
            status="Deployed",
            remediation="power-cycle",
        ),
        Machine(system_id="m3", hostname="w-2", pool="workers", zone="az1", status="Deploying"),
    ]
    cluster_id = await _running(api, project, cp_activities, machines)
    database = await Database.open(api.settings)
    try:
        async with database.sessions.begin() as session:
            for report in (
                NodeReport(
                    hostname="cp-1",
                    system_id="m1",
                    role="control-plane",
                    ready=True,
                    kubelet_version="v1.30.4",
                ),
                ObservedNode(
                    hostname="w-1",
                    system_id="m2",
                    ready=False,
                    kubelet_version="v1.30.4",
                    silent_since=1700000000.0,
                ),
            ):
                session.add(
                    AgentNode(
                        cluster_id=cluster_id,
                        hostname=report.hostname,
                        fingerprint="f",
                        report={"node": report.model_dump(mode="json")},
                    )
                )
    finally:
        await database.close()
    answer = await api.http.get(f"/v1/clusters/{cluster_id}/nodes", headers=project.viewer)
    assert answer.status_code == 200, answer.text
    rows = [
        (n["hostname"], n["zone"], n["role"], n["kubelet_version"], n["ready"], n["remediation"])
        for n in answer.json()["items"]
    ]
    assert rows == [
        ("cp-1", "az1", "control-plane", "v1.30.4", True, "-"),
        ("w-1", "az2", "worker", "v1.30.4", False, "power-cycle"),
        ("w-2", "az1", "worker", "", None, "-"),
    ]
    # GET of the cluster says since when a silent node's agent was last heard from.
    shown = (await api.http.get(f"/v1/clusters/{cluster_id}", headers=project.viewer)).json()
    assert [n["silent_since"] for n in shown["nodes"]] == [None, 1700000000.0]
    other = await api.http.get("/v1/clusters/nope/nodes", headers=project.viewer)
    assert other.status_code == 404


async def test_status_shows_each_pools_spread_over_zones(
    api: Api, project: ProjectKeys, system_gateway: Worker, cp_activities: Any
) -> None:
    zones = {"constraints": {"zones": ["az1", "az2", "az3"]}}
    account = await create_account(api, project.editor)
    cluster = await create_cluster(
        api,
        project.editor,
        account,
        control_plane={"name": "control-plane", "count": 3, **zones},
        worker_pools=[{"name": "workers", "count": 2, **zones}],
    )
    machines = [
        Machine(system_id=f"c{i}", hostname=f"cp-{i}", pool="control-plane", zone=zone)
        for i, zone in enumerate(["az1", "az2", "az1"])
    ] + [Machine(system_id="w1", hostname="w-1", pool="workers", zone="az2")]
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING, machines=machines),
    )
    got = await api.http.get(f"/v1/clusters/{cluster['id']}", headers=project.viewer)
    assert got.status_code == 200, got.text
    pools = {p["name"]: p for p in got.json()["pools"]}
    assert pools["control-plane"] == {
        "name": "control-plane",
        "role": "control-plane",
        "count": 3,
        "machines": 3,
        "zones": ["az1", "az2", "az3"],
        "by_zone": [{"zone": "az1", "machines": 2}, {"zone": "az2", "machines": 1}],
    }
    assert (pools["workers"]["count"], pools["workers"]["machines"]) == (2, 1)
    assert got.json()["spec"]["control_plane"]["constraints"]["zones"] == ["az1", "az2", "az3"]


async def test_hostile_zones_labels_and_taints_answer_422_naming_the_field(
    api: Api, project: ProjectKeys, system_gateway: Worker
) -> None:
    account = await create_account(api, project.editor)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"constraints": {"zones": ["az1", "az1"]}}, "constraints.zones", "once"),
        ({"constraints": {"zones": ["x"] * 10_000}}, "constraints.zones", "at most 16"),
        ({"constraints": {"zone": "az1", "zones": ["az2"]}}, "constraints", "not both"),
        ({"constraints": {"zones": ["a\nb"]}}, "constraints.zones.0", "pattern"),
        ({"labels": {"node-role.kubernetes.io/gpu": ""}}, "labels", "NodeRestriction"),
        ({"labels": {"x" * 5000: "y"}}, "labels", "at most"),
        ({"labels": {"gpu": "a\u2028b"}}, "labels.gpu", "control character"),
        ({"labels": {"gpu": ["a"]}}, "labels.gpu", "string"),
        ({"taints": [{"key": "gpu", "effect": "Never"}]}, "taints.0.effect", "NoSchedule"),
        ({"taints": "gpu=true:NoSchedule"}, "taints", "list"),
    ]
    for pool, field, words in cases:
        body = {
            "name": "hostile",
            "cloud_account_id": account["id"],
            "worker_pools": [{"name": "w", "count": 1, **pool}],
        }
        answer = await api.http.post("/v1/clusters", json=body, headers=project.editor)
        assert answer.status_code == 422, (pool, answer.text)
        errors = answer.json()["errors"]
        assert any(
            e["field"].startswith(f"body.worker_pools.0.{field}") and words in e["message"]
            for e in errors
        ), (pool, errors)
    # The one-zone spelling stored specs use is still accepted, and answered as zones.
    body = {
        "name": "one-zone",
        "cloud_account_id": account["id"],
        "worker_pools": [{"name": "w", "count": 1, "constraints": {"zone": "az1"}}],
    }
    answer = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    assert answer.status_code == 202, answer.text
    assert answer.json()["spec"]["worker_pools"][0]["constraints"]["zones"] == ["az1"]


async def test_node_routes_reach_management_and_name_what_is_wrong(
    api: Api,
    project: ProjectKeys,
    system_gateway: Worker,
    cp_activities: Any,
    env: WorkflowEnvironment,
) -> None:
    machines = [
        Machine(system_id="m1", hostname="cp-1", pool="control-plane", status="Deployed"),
        Machine(system_id="m2", hostname="w-1", pool="workers", status="Deployed"),
    ]
    cluster_id = await _running(api, project, cp_activities, machines)
    base = f"/v1/clusters/{cluster_id}"
    not_yet = await api.http.post(f"{base}/nodes/w-1/cordon", headers=project.editor)
    assert not_yet.status_code == 409 and "not under management" in not_yet.json()["detail"]
    await env.client.start_workflow(
        ManageStandIn.run,
        cluster_id,
        id=manage_workflow_id(cluster_id),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    for action in ("cordon", "drain", "uncordon"):
        answer = await api.http.post(f"{base}/nodes/m2/{action}", headers=project.editor)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["kind"], answer.json()["message"]) == (action, "m2")

    unknown = await api.http.post(f"{base}/nodes/w-9/drain", headers=project.editor)
    assert unknown.status_code == 422
    [error] = unknown.json()["errors"]
    assert error["field"] == "path.node" and error["message"].startswith("no node 'w-9' in")
    assert error["message"].endswith("its nodes are ['cp-1', 'w-1']")
    bad = await api.http.post(f"{base}/nodes/bad_name/drain", headers=project.editor)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.node"
    viewer = await api.http.post(f"{base}/nodes/w-1/drain", headers=project.viewer)
    assert viewer.status_code == 403
    other = await api.http.post("/v1/clusters/nope/nodes/w-1/drain", headers=project.editor)
    assert other.status_code == 404

    await api.http.post(f"{base}/pause", headers=project.editor)
    paused = await api.http.post(f"{base}/nodes/w-1/cordon", headers=project.editor)
    assert paused.status_code == 409 and "paused" in paused.json()["detail"]


async def test_repave_names_a_node_or_a_pool_of_the_cluster(
    api: Api,
    project: ProjectKeys,
    system_gateway: Worker,
    cp_activities: Any,
    env: WorkflowEnvironment,
) -> None:
    machines = [Machine(system_id="m2", hostname="w-1", pool="workers", status="Deployed")]
    cluster_id = await _running(api, project, cp_activities, machines)
    base = f"/v1/clusters/{cluster_id}"
    await env.client.start_workflow(
        ManageStandIn.run,
        cluster_id,
        id=manage_workflow_id(cluster_id),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    pool = await api.http.post(f"{base}/repave", json={"pool": "workers"}, headers=project.editor)
    assert pool.status_code == 200, pool.text
    assert (pool.json()["kind"], pool.json()["message"]) == ("repave", "workers")
    node = await api.http.post(f"{base}/repave", json={"node": "w-1"}, headers=project.editor)
    assert node.status_code == 200, node.text

    for body, field, text in (
        ({"pool": "gpu"}, "body.pool", "no pool 'gpu'; pools are"),
        ({"node": "w-9"}, "body.node", "no node 'w-9'"),
        ({"node": "w-1", "pool": "workers"}, "body", "not both"),
        ({}, "body", "name either node"),
    ):
        refused = await api.http.post(f"{base}/repave", json=body, headers=project.editor)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field
        assert text in refused.json()["errors"][0]["message"]
