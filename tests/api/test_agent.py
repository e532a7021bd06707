from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.control_plane import ControlPlaneActivities
from activities.models import (
    EnqueueAgentCommandInput,
    IssueAgentTokenInput,
    RecordStatusInput,
    RevokeAgentTokenInput,
    SweepSilentAgentsInput,
)
from domain.maas import Machine
from domain.naming import CONTROL_PLANE_QUEUE, QUERY_STATE, create_workflow_id, manage_workflow_id
from domain.phases import Phase
from store.db import Database
from store.models import Cluster
from store.types import utcnow
from tests.api.conftest import Api, ProjectKeys, run_activity
from tests.api.standins import ManageStandIn
from tests.api.test_accounts import create_account
from tests.api.test_clusters import create_cluster
from tests.support.temporal import assert_eventually
from workflows.contracts import AgentReport


@pytest.fixture(scope="module")
async def account(api: Api, project: ProjectKeys, system_gateway: Worker) -> dict[str, Any]:
    return await create_account(api, project.editor)


NODES = [f"node-{i}" for i in range(8)]


def machines(hostnames: list[str]) -> list[Machine]:
    """The cluster's machines as the create saga records them: the first one is the control
    plane that runs `kubeadm init`."""
    return [
        Machine(
            system_id=f"sys{i}",
            hostname=name,
            pool="control-plane" if i == 0 else "workers",
        )
        for i, name in enumerate(hostnames)
    ]


async def agent_cluster(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp: ControlPlaneActivities,
    hostnames: list[str] = ["node-1", *NODES],  # noqa: B006 (read only)
) -> tuple[dict[str, Any], dict[str, str]]:
    """A cluster whose machines are recorded (DeployingOS), with its agent's credentials."""
    cluster = await create_cluster(api, project.editor, account)
    token = await run_activity(cp.issue_agent_token, IssueAgentTokenInput(cluster_id=cluster["id"]))
    await run_activity(
        cp.record_status,
        RecordStatusInput(
            cluster_id=cluster["id"],
            phase=Phase.DEPLOYING_OS,
            machines=machines(list(dict.fromkeys(hostnames))),
        ),
    )
    return cluster, {"Authorization": f"Bearer {token.token}"}


def beat(hostname: str = "node-1", ready: bool = False, **over: Any) -> dict[str, Any]:
    return {
        "node": {
            "hostname": hostname,
            "role": "control-plane",
            "ready": ready,
            "kubelet_version": "v1.30.4",
        },
        "control_plane_ready": ready,
        **over,
    }


async def test_heartbeat_signals_create_only_on_change(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    first = await api.http.post("/v1/agent/heartbeat", json=beat(), headers=agent)
    assert first.json() == {"ok": True, "signalled": True}
    same = await api.http.post("/v1/agent/heartbeat", json=beat(), headers=agent)
    assert same.json() == {"ok": True, "signalled": False}
    other_node = await api.http.post("/v1/agent/heartbeat", json=beat("node-2"), headers=agent)
    assert other_node.json()["signalled"] is True
    ready = await api.http.post("/v1/agent/heartbeat", json=beat(ready=True), headers=agent)
    assert ready.json()["signalled"] is True

    # The outbox sends the changes after answering; a signal carries the nodes that changed
    # since the one before, and the workflows merge them by hostname.
    async def both_nodes() -> list[AgentReport]:
        reports = await create_reports(env, cluster["id"])
        assert sorted(merged(reports)) == ["node-1", "node-2"]
        assert merged(reports)["node-1"].ready is True
        return reports

    reports = await assert_eventually(both_nodes)
    assert len(reports) <= 3
    assert reports[-1].control_plane_ready is True
    assert reports[-1].kubernetes_version == "v1.30.4"

    async def recorded() -> None:
        got = (await api.http.get(f"/v1/clusters/{cluster['id']}", headers=project.viewer)).json()
        assert got["last_heartbeat_at"] is not None

    await assert_eventually(recorded)


async def test_status_stores_kubeconfig_encrypted_and_signals_manage(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    kubeconfig = "apiVersion: v1\nkind: Config\n# very-secret-kubeconfig\n"
    answer = await api.http.post(
        "/v1/agent/status", json={**beat(ready=True), "kubeconfig": kubeconfig}, headers=agent
    )
    assert answer.json()["signalled"] is True, answer.text

    async def created() -> None:
        assert len(await create_reports(env, cluster["id"])) == 1

    await assert_eventually(created)
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING),
    )
    manage = await env.client.start_workflow(
        ManageStandIn.run,
        cluster["id"],
        id=manage_workflow_id(cluster["id"]),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    update = await api.http.post("/v1/agent/status", json=beat("node-2"), headers=agent)
    assert update.json()["signalled"] is True

    async def managed() -> None:
        assert (await manage.query(QUERY_STATE))["reports"] == 1

    await assert_eventually(managed)
    got = await api.http.get(f"/v1/clusters/{cluster['id']}/kubeconfig", headers=project.editor)
    assert got.json() == {"cluster_id": cluster["id"], "kubeconfig": kubeconfig}
    raw = (api.settings.resolved_data_dir() / "metalgate.db").read_bytes()
    wal = api.settings.resolved_data_dir() / "metalgate.db-wal"
    if wal.exists():
        raw += wal.read_bytes()
    assert b"very-secret-kubeconfig" not in raw


async def test_commands_roundtrip(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    other, other_agent = await agent_cluster(api, project, account, cp_activities)
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING),
    )
    manage = await env.client.start_workflow(
        ManageStandIn.run,
        cluster["id"],
        id=manage_workflow_id(cluster["id"]),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    command = EnqueueAgentCommandInput(
        cluster_id=cluster["id"],
        command_id=f"{cluster['id']}-up-1",
        kind="upgrade",
        args={"version": "v1.31.0"},
    )
    await run_activity(cp_activities.enqueue_agent_command, command)
    await run_activity(cp_activities.enqueue_agent_command, command)
    listed = (await api.http.get("/v1/agent/commands", headers=agent)).json()["commands"]
    assert listed == [{"id": command.command_id, "kind": "upgrade", "args": {"version": "v1.31.0"}}]
    assert (await api.http.get("/v1/agent/commands", headers=other_agent)).json()["commands"] == []
    path = f"/v1/agent/commands/{command.command_id}"
    foreign = await api.http.post(path, json={"state": "running"}, headers=other_agent)
    assert foreign.status_code == 404
    bad_state = await api.http.post(path, json={"state": "exploded"}, headers=agent)
    assert bad_state.status_code == 422
    assert [e["field"] for e in bad_state.json()["errors"]] == ["body.state"]
    running = await api.http.post(
        path, json={"state": "running", "node": "node-1", "progress": "1/3"}, headers=agent
    )
    assert running.json()["signalled"] is True
    done = await api.http.post(path, json={"state": "succeeded"}, headers=agent)
    assert done.json()["signalled"] is True
    assert (await manage.query(QUERY_STATE))["results"] == 2
    late = await api.http.post(path, json={"state": "failed"}, headers=agent)
    assert late.json()["signalled"] is False
    assert (await api.http.get("/v1/agent/commands", headers=agent)).json()["commands"] == []
    assert other["id"] != cluster["id"]


async def test_agent_auth(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    assert (await api.http.post("/v1/agent/heartbeat", json=beat())).status_code == 401
    api_key = await api.http.post("/v1/agent/heartbeat", json=beat(), headers=project.admin)
    assert api_key.status_code == 401
    assert (await api.http.get("/v1/agent/commands", headers=project.admin)).status_code == 401
    assert (await api.http.get("/v1/clusters", headers=agent)).status_code == 401
    await run_activity(
        cp_activities.revoke_agent_token, RevokeAgentTokenInput(cluster_id=cluster["id"])
    )
    revoked = await api.http.post("/v1/agent/heartbeat", json=beat(), headers=agent)
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]
    invalid = await api.http.post("/v1/agent/heartbeat", json={"node": {}}, headers=agent)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "body.node.hostname"


async def test_silent_cluster_reporting_again_is_a_change(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING),
    )
    manage = await env.client.start_workflow(
        ManageStandIn.run,
        cluster["id"],
        id=manage_workflow_id(cluster["id"]),
        task_queue=CONTROL_PLANE_QUEUE,
    )
    assert (await api.http.post("/v1/agent/heartbeat", json=beat(), headers=agent)).json()[
        "signalled"
    ]

    async def first_report() -> None:
        assert (await manage.query(QUERY_STATE))["reports"] == 1

    await assert_eventually(first_report)
    database = await Database.open(api.settings)
    try:
        # The agent went quiet long ago: backdate what the batch flush wrote.
        await assert_eventually(lambda: _heartbeat_recorded(database, cluster["id"]))
        async with database.sessions.begin() as session:
            await session.execute(
                update(Cluster)
                .where(Cluster.id == cluster["id"])
                .values(last_heartbeat_at=utcnow() - timedelta(hours=1))
            )
        swept = await run_activity(
            cp_activities.sweep_silent_agents, SweepSilentAgentsInput(silence_seconds=600)
        )
        assert cluster["id"] in swept.signalled
        got = (await api.http.get(f"/v1/clusters/{cluster['id']}", headers=project.viewer)).json()
        assert got["agent_silent"] is True

        async def signalled_again() -> None:
            # The API's agent cache sees the sweep's flag within its TTL (1 s here).
            again = await api.http.post("/v1/agent/heartbeat", json=beat(), headers=agent)
            assert again.json()["signalled"] is True

        await assert_eventually(signalled_again, within=5.0, interval=0.2)
        got = (await api.http.get(f"/v1/clusters/{cluster['id']}", headers=project.viewer)).json()
        assert got["agent_silent"] is False

        async def managed() -> None:
            assert (await manage.query(QUERY_STATE))["reports"] == 2

        await assert_eventually(managed)
    finally:
        await database.close()


async def _heartbeat_recorded(database: Database, cluster_id: str) -> None:
    async with database.sessions() as session:
        seen = await session.scalar(
            select(Cluster.last_heartbeat_at).where(Cluster.id == cluster_id)
        )
    assert seen is not None


async def test_concurrent_node_changes_leave_a_complete_last_report(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    env: WorkflowEnvironment,
    cp_activities: ControlPlaneActivities,
) -> None:
    """Nodes that change at the same moment: the reports together name them all, and the
    last one's summary is over every node."""
    cluster, agent = await agent_cluster(api, project, account, cp_activities)
    nodes = NODES
    answers = await asyncio.gather(
        *(
            api.http.post("/v1/agent/heartbeat", json=beat(n, ready=True), headers=agent)
            for n in nodes
        )
    )
    assert all(a.json()["signalled"] for a in answers), [a.text for a in answers]

    async def complete() -> list[AgentReport]:
        reports = await create_reports(env, cluster["id"])
        assert sorted(merged(reports)) == nodes
        return reports

    reports = await assert_eventually(complete)
    assert len(reports) <= len(nodes)
    assert reports[-1].control_plane_ready and reports[-1].healthy


async def create_reports(env: WorkflowEnvironment, cluster_id: str) -> list[AgentReport]:
    """What the create stand-in was signalled, in order."""
    handle = env.client.get_workflow_handle(create_workflow_id(cluster_id))
    return await handle.query(QUERY_STATE, result_type=list[AgentReport])


def merged(reports: list[AgentReport]) -> dict[str, Any]:
    """Each node's latest status, as the workflows merge them."""
    nodes: dict[str, Any] = {}
    for report in reports:
        nodes.update({n.hostname: n for n in report.nodes})
    return nodes


async def test_commands_go_to_their_runner_else_the_first_recorded_control_plane(
    api: Api,
    project: ProjectKeys,
    account: dict[str, Any],
    cp_activities: ControlPlaneActivities,
) -> None:
    """Every control-plane agent polls; a command naming a runner goes to that node, any
    other to the first control-plane machine the cluster records. When a repave replaces
    that machine, the next one takes over."""
    hosts = ["cp-1", "cp-2", "cp-3", "w-1"]
    cluster, agent = await agent_cluster(api, project, account, cp_activities, hosts)
    three = [
        Machine(system_id=f"sys{i}", hostname=h, pool="workers" if h == "w-1" else "control-plane")
        for i, h in enumerate(hosts)
    ]
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.RUNNING, machines=three),
    )
    command = EnqueueAgentCommandInput(
        cluster_id=cluster["id"], command_id=f"{cluster['id']}-drain-1", kind="drain"
    )
    await run_activity(cp_activities.enqueue_agent_command, command)

    async def listed(node: str | None) -> list[str]:
        params = {"node": node} if node else {}
        answer = await api.http.get("/v1/agent/commands", params=params, headers=agent)
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["commands"]]

    assert await listed("cp-1") == [command.command_id]
    assert await listed("cp-2") == [] and await listed("w-1") == []
    assert await listed(None) == [command.command_id]  # an agent from before asks for all
    # cp-1 repaved: the fresh machine is recorded last, so cp-2 runs commands from now on.
    after = [*three[1:], Machine(system_id="sys9", hostname="cp-4", pool="control-plane")]
    await run_activity(
        cp_activities.record_status,
        RecordStatusInput(cluster_id=cluster["id"], phase=Phase.REPAVING, machines=after),
    )
    assert await listed("cp-2") == [command.command_id]
    assert await listed("cp-1") == [] and await listed("cp-4") == []

    # A take-out names its runner (not the first control plane, which may be the one leaving).
    addressed = EnqueueAgentCommandInput(
        cluster_id=cluster["id"],
        command_id=f"{cluster['id']}-remediate-2",
        kind="remediate",
        args={"node": "cp-2", "runner": "cp-3", "etcd_member": "true"},
    )
    await run_activity(cp_activities.enqueue_agent_command, addressed)
    assert await listed("cp-3") == [addressed.command_id]
    assert await listed("cp-2") == [command.command_id]
