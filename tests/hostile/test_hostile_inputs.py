"""Hostile inputs on a live API (real store, real dev server, stand-in workflows): versions,
strings, sizes, foreign hostnames, kubeconfigs, proxies and strict bodies. Each answers a 4xx
that names the field and the fix, and a follow-up read shows nothing was stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.models import IssueAgentTokenInput, RecordStatusInput
from domain.maas import Machine
from domain.naming import CONTROL_PLANE_QUEUE, QUERY_STATE, manage_workflow_id
from domain.phases import Phase
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.standins import ManageStandIn
from tests.api.test_accounts import create_account
from tests.api.test_gateways import create_gateway

KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
HOSTS = ["cp-1", "worker-1", "worker-2"]


@pytest.fixture(scope="module")
async def account(api: Api, project: ProjectKeys, system_gateway: Worker) -> dict[str, Any]:
    return await create_account(api, project.editor)


def refused(answer: Any, status: int, field: str, *words: str) -> dict[str, Any]:
    """The answer is `status`, names `field` in its errors, and says each of `words`."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    fields = [e["field"] for e in body["errors"]]
    assert field in fields, body
    for word in words:
        assert word in body["detail"], body
    return body


class Cluster:
    def __init__(self, api: Api, project: ProjectKeys, data: dict[str, Any], agent: str) -> None:
        self.api, self.project, self.id = api, project, data["id"]
        self.base = f"/v1/clusters/{self.id}"
        self.agent = {"Authorization": f"Bearer {agent}"}

    async def get(self) -> dict[str, Any]:
        answer = await self.api.http.get(self.base, headers=self.project.viewer)
        assert answer.status_code == 200, answer.text
        got: dict[str, Any] = answer.json()
        return got

    async def post(self, action: str, body: Any, **headers: str) -> Any:
        return await self.api.http.post(
            f"{self.base}/{action}", json=body, headers={**self.project.editor, **headers}
        )

    async def report(self, hostname: str, path: str = "heartbeat", **over: Any) -> Any:
        body = {"node": {"hostname": hostname, "role": "control-plane", "ready": True}, **over}
        return await self.api.http.post(f"/v1/agent/{path}", json=body, headers=self.agent)

    async def kubeconfig(self) -> Any:
        return await self.api.http.get(f"{self.base}/kubeconfig", headers=self.project.editor)


async def new_cluster(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp: ControlPlaneActivities,
    phase: Phase = Phase.BOOTSTRAPPING_CONTROL_PLANE,
) -> Cluster:
    """A cluster whose machines are recorded (cp-1 first), in `phase`, with its agent token."""
    body = {
        "name": f"h-{uuid.uuid4().hex[:6]}",
        "cloud_account_id": account["id"],
        "worker_pools": [{"name": "workers", "count": 2}],
    }
    created = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    assert created.status_code == 202, created.text
    cluster_id = created.json()["id"]
    token = await run_activity(cp.issue_agent_token, IssueAgentTokenInput(cluster_id=cluster_id))
    machines = [
        Machine(system_id=f"sys{i}", hostname=h, pool="control-plane" if i == 0 else "workers")
        for i, h in enumerate(HOSTS)
    ]
    for step in (Phase.DEPLOYING_OS, phase):
        await run_activity(
            cp.record_status,
            RecordStatusInput(cluster_id=cluster_id, phase=step, machines=machines),
        )
    return Cluster(api, project, created.json(), token.token)


async def managed(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp: ControlPlaneActivities,
    env: WorkflowEnvironment,
) -> tuple[Cluster, WorkflowHandle[Any, Any]]:
    cluster = await new_cluster(api, project, account, cp, Phase.RUNNING)
    handle = await env.client.start_workflow(
        ManageStandIn.run,
        cluster.id,
        id=manage_workflow_id(cluster.id),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    return cluster, handle


# --- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "words"),
    [
        ("v1.99.1\n", ["v1.<minor>.<patch>"]),
        ("v1.30.4 ", ["v1.<minor>.<patch>"]),
        ("v1.99.999", ["not a supported version"]),
        ("v1.31.999", ["not a supported version"]),
    ],
)
async def test_create_refuses_a_bad_or_unsupported_version_and_stores_nothing(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    version: str,
    words: list[str],
) -> None:
    name = f"v-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "cloud_account_id": account["id"], "kubernetes_version": version}
    answer = await api.http.post("/v1/clusters", json=body, headers=project.editor)
    refused(answer, 422, "body.kubernetes_version", *words)
    listed = (await api.http.get("/v1/clusters?limit=500", headers=project.viewer)).json()
    assert name not in [c["name"] for c in listed["items"]]


@pytest.mark.parametrize(
    ("version", "status", "words"),
    [
        ("v1.99.1\n", 422, ["v1.<minor>.<patch>"]),
        ("v1.32.0", 422, ["skips a minor", "v1.31.x first"]),
        ("v1.29.9", 422, ["downgrades are not supported"]),
        ("v1.30.3", 422, ["downgrades are not supported"]),
        ("v1.99.999", 422, ["not a supported version"]),
        ("v1.30.4", 409, ["already runs v1.30.4"]),
    ],
)
async def test_upgrade_refuses_bad_skips_downgrades_and_unknown_versions(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
    version: str,
    status: int,
    words: list[str],
) -> None:
    cluster, manage = await managed(api, project, account, cp_activities, env)
    answer = await cluster.post("upgrade", {"kubernetes_version": version})
    refused(answer, status, "body.kubernetes_version", *words)
    assert (await manage.query(QUERY_STATE))["pending"] == []
    assert (await cluster.get())["kubernetes_version"] == "v1.30.4"


async def test_a_retried_upgrade_is_answered_like_the_first(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
) -> None:
    cluster, manage = await managed(api, project, account, cp_activities, env)
    body = {"kubernetes_version": "v1.31.2"}
    first = await cluster.post("upgrade", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200, first.text
    again = await cluster.post("upgrade", body, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # Without a key (a client that sends none), the queued action is recognised.
    keyless = await cluster.post("upgrade", body)
    assert keyless.status_code == 200, keyless.text
    assert keyless.json()["action_id"] == first.json()["action_id"]
    assert len((await manage.query(QUERY_STATE))["pending"]) == 1
    other_body = await cluster.post(
        "upgrade", {"kubernetes_version": "v1.31.1"}, **{"Idempotency-Key": "k-1"}
    )
    refused(other_body, 422, "header.Idempotency-Key", "different request")
    bad_key = await cluster.post("upgrade", body, **{"Idempotency-Key": "k ey!"})
    refused(bad_key, 422, "header.Idempotency-Key")
    assert len((await manage.query(QUERY_STATE))["pending"]) == 1


# --- strict bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body", "field", "words"),
    [
        ("upgrade", {"kubernetes_version": "v1.31.0", "force": True}, "body.force", ["remove it"]),
        ("scale", {"pool": "workers", "count": True}, "body.count", ["JSON integer"]),
        ("scale", {"pool": "workers", "count": "3"}, "body.count", ["JSON integer"]),
        ("scale", {"pool": "workers", "count": 3, "force": True}, "body.force", ["remove it"]),
        ("scale", {"pool": "w\n", "count": 3}, "body.pool", []),
        ("repave", {"node": "cp-1", "force": True}, "body.force", ["remove it"]),
        ("repave", {"node": "cp-1\nrm -rf /"}, "body.node", []),
    ],
)
async def test_action_bodies_are_strict(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
    action: str,
    body: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    cluster, manage = await managed(api, project, account, cp_activities, env)
    refused(await cluster.post(action, body), 422, field, *words)
    assert (await manage.query(QUERY_STATE))["pending"] == []
    assert (await cluster.get())["spec"]["worker_pools"][0]["count"] == 2


async def test_scale_shows_the_new_count_in_the_spec(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
) -> None:
    cluster, _ = await managed(api, project, account, cp_activities, env)
    answer = await cluster.post("scale", {"pool": "workers", "count": 4})
    assert answer.status_code == 200, answer.text
    assert (await cluster.get())["spec"]["worker_pools"][0]["count"] == 4


# --- agents: foreign hostnames, sizes, strings ------------------------------------------------


@pytest.mark.parametrize(
    ("node", "field", "words"),
    [
        ({"hostname": "phantom-1"}, "body.node.hostname", ["not one of this cluster's machines"]),
        ({"hostname": "cp-1", "system_id": "other"}, "body.node.system_id", ["sys0"]),
        ({"hostname": "h" * 400_000}, "body.node.hostname", ["at most 253"]),
        ({"hostname": "cp-1\n"}, "body.node.hostname", []),
        ({"hostname": "cp-1", "kubelet_version": "v1.30.4\n"}, "body.node.kubelet_version", []),
    ],
)
async def test_agent_reports_name_only_the_clusters_machines(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    node: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    cluster = await new_cluster(api, project, account, cp_activities)
    for path in ("heartbeat", "status"):
        answer = await api.http.post(
            f"/v1/agent/{path}", json={"node": node}, headers=cluster.agent
        )
        refused(answer, 422, field, *words)
    assert (await cluster.get())["nodes"] == []


async def test_agent_messages_are_bounded_and_without_control_characters(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster = await new_cluster(api, project, account, cp_activities)
    refused(await cluster.report("cp-1", message="a\x1b[2Jb"), 422, "body.message", "control")
    refused(await cluster.report("cp-1", message="m" * 400_000), 422, "body.message", "shorten")
    assert (await cluster.get())["nodes"] == []
    assert (await cluster.report("cp-1", message="all good")).status_code == 200


async def test_a_machine_not_yet_recorded_is_told_to_retry(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    """While machines are deployed (and replaced), an unknown one may be a replacement."""
    cluster = await new_cluster(api, project, account, cp_activities, Phase.DEPLOYING_OS)
    answer = await cluster.report("replacement-1")
    assert answer.status_code == 425, answer.text
    assert (await cluster.get())["nodes"] == []


# --- kubeconfig ---------------------------------------------------------------------------------


async def test_kubeconfig_is_accepted_once_from_the_first_control_plane(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster = await new_cluster(api, project, account, cp_activities)
    worker = await cluster.report("worker-1", "status", kubeconfig=KUBECONFIG)
    refused(worker, 422, "body.kubeconfig", "first control-plane machine (cp-1)")
    assert (await cluster.kubeconfig()).status_code == 409
    first = await cluster.report("cp-1", "status", kubeconfig=KUBECONFIG)
    assert first.status_code == 200, first.text
    # The same post again (its answer lost) is fine; another kubeconfig is not.
    assert (await cluster.report("cp-1", "status", kubeconfig=KUBECONFIG)).status_code == 200
    evil = KUBECONFIG.replace("clusters: []", "clusters: [{server: https://evil:6443}]")
    refused(await cluster.report("cp-1", "status", kubeconfig=evil), 409, "body.kubeconfig", "once")
    refused(
        await cluster.report("cp-1", "status", kubeconfig="k" * 100_000),
        422,
        "body.kubeconfig",
        "shorten",
    )
    assert (await cluster.kubeconfig()).json()["kubeconfig"] == KUBECONFIG


async def test_kubeconfig_after_running_is_refused(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
) -> None:
    cluster, _ = await managed(api, project, account, cp_activities, env)
    late = await cluster.report("cp-1", "status", kubeconfig=KUBECONFIG)
    refused(late, 409, "body.kubeconfig", "only before Running")
    assert (await cluster.kubeconfig()).status_code == 409


async def test_kubeconfig_is_dropped_and_not_served_once_a_delete_is_requested(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster = await new_cluster(api, project, account, cp_activities)
    assert (await cluster.report("cp-1", "status", kubeconfig=KUBECONFIG)).status_code == 200
    assert (await cluster.kubeconfig()).status_code == 200
    deleting = await api.http.delete(cluster.base, headers=project.editor)
    assert deleting.status_code == 202, deleting.text
    gone = await cluster.kubeconfig()
    assert gone.status_code == 409 and "being deleted" in gone.json()["detail"]
    refused(
        await cluster.report("cp-1", "status", kubeconfig=KUBECONFIG),
        409,
        "body.kubeconfig",
        "being deleted",
    )
    database_row = await _kubeconfig_stored(api, cluster.id)
    assert database_row is None
    await run_activity(
        cp_activities.record_status, RecordStatusInput(cluster_id=cluster.id, phase=Phase.DELETED)
    )
    assert (await cluster.kubeconfig()).status_code == 410


async def _kubeconfig_stored(api: Api, cluster_id: str) -> str | None:
    from store.db import Database
    from store.models import Cluster as ClusterRow

    database = await Database.open(api.settings)
    try:
        async with database.sessions() as session:
            row = await session.get(ClusterRow, cluster_id)
            assert row is not None
            return row.kubeconfig_enc
    finally:
        await database.close()


# --- command results -----------------------------------------------------------------------------


async def test_a_command_result_retried_with_its_key_signals_once(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
    env: WorkflowEnvironment,
) -> None:
    from activities.models import EnqueueAgentCommandInput

    cluster, manage = await managed(api, project, account, cp_activities, env)
    command = EnqueueAgentCommandInput(
        cluster_id=cluster.id, command_id=f"up-1.{cluster.id}", kind="upgrade", args={}
    )
    await run_activity(cp_activities.enqueue_agent_command, command)
    path = f"/v1/agent/commands/{command.command_id}"
    body = {"state": "running", "node": "cp-1", "progress": "0/3"}
    key = {"Idempotency-Key": "r-1", **cluster.agent}
    first = await api.http.post(path, json=body, headers=key)
    assert first.json() == {"ok": True, "signalled": True}
    again = await api.http.post(path, json=body, headers=key)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (await manage.query(QUERY_STATE))["results"] == 1
    bad = await api.http.post(path, json={**body, "message": "x\x00y"}, headers=cluster.agent)
    refused(bad, 422, "body.message", "control")
    extra = await api.http.post(path, json={**body, "force": True}, headers=cluster.agent)
    refused(extra, 422, "body.force", "remove it")
    assert (await manage.query(QUERY_STATE))["results"] == 1


# --- gateways: proxies and registration strings -------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "field"),
    [
        ({"http_proxy": "http://p:3128\nLD_PRELOAD=/evil.so"}, "body.proxy.http_proxy"),
        ({"https_proxy": "http://p:3128 LD_PRELOAD=/evil.so"}, "body.proxy.https_proxy"),
        ({"http_proxy": "file:///etc/passwd"}, "body.proxy.http_proxy"),
        ({"no_proxy": ["10.0.0.0/8\nLD_PRELOAD=/evil.so"]}, "body.proxy.no_proxy.0"),
        ({"no_proxy": ["a,b"]}, "body.proxy.no_proxy.0"),
    ],
)
async def test_a_gateway_proxy_must_be_a_url(
    api: Api,
    project: ProjectKeys,
    proxy: dict[str, Any],
    field: str,
) -> None:
    name = f"gw-{uuid.uuid4().hex[:6]}"
    answer = await api.http.post(
        "/v1/gateways", json={"name": name, "proxy": proxy}, headers=project.editor
    )
    refused(answer, 422, field)
    listed = (await api.http.get("/v1/gateways", headers=project.viewer)).json()["items"]
    assert name not in [g["name"] for g in listed]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hostname": "h" * 400_000, "version": "0.1.0"}, "body.hostname"),
        ({"hostname": "gw\nLD_PRELOAD=/evil.so", "version": "0.1.0"}, "body.hostname"),
        ({"hostname": "gw", "version": "0.1.0\r\nX: y"}, "body.version"),
        ({"hostname": "gw", "version": "v" * 400_000}, "body.version"),
    ],
)
async def test_gateway_registration_strings_are_bounded(
    api: Api,
    project: ProjectKeys,
    body: dict[str, Any],
    field: str,
) -> None:
    created = await create_gateway(api, project.editor)
    token = created["registration_token"]
    answer = await api.http.post("/v1/gateways/register", json={"token": token, **body})
    refused(answer, 422, field)
    got = await api.http.get(f"/v1/gateways/{created['gateway']['id']}", headers=project.viewer)
    assert got.json()["hostname"] is None
    # The refused attempt did not spend the token.
    good = {"token": token, "hostname": "gw-host", "version": "0.1.0"}
    assert (await api.http.post("/v1/gateways/register", json=good)).status_code == 200


# --- cloud accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"maas_api_key": "aaa:bbb:ccc\n"}, "body", ["maas_api_key must look like"]),
        ({"maas_url": "http://maas\x00x/MAAS/"}, "body.maas_url", ["control character"]),
        ({"maas_url": "http://maas/MAAS/\nX-Evil: 1"}, "body.maas_url", []),
    ],
)
async def test_cloud_account_strings_are_refused_before_validation(
    api: Api,
    project: ProjectKeys,
    system_gateway: Worker,
    over: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    name = f"a-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "maas_url": "http://maas:5240/MAAS/",
        "maas_api_key": "aaa:bbb:ccc",
        "use_system_gateway": True,
        **over,
    }
    answer = await api.http.post("/v1/cloud-accounts", json=body, headers=project.editor)
    refused(answer, 422, field, *words)
    listed = (await api.http.get("/v1/cloud-accounts", headers=project.viewer)).json()["items"]
    assert name not in [a["name"] for a in listed]
