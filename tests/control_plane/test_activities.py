"""Control-plane activities on a real store and the session's dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.metadata import version as package_version

import pytest
import yaml
from sqlalchemy import select, update
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.control_plane import ControlPlaneActivities, is_forward
from activities.models import (
    ClusterClaimsInput,
    EnqueueAgentCommandInput,
    IssueAgentTokenInput,
    OwnedMachine,
    RecordStatusInput,
    RenderCloudInitInput,
    RevokeAgentTokenInput,
    StopClusterWorkflowsInput,
    SweepSilentAgentsInput,
)
from agent.cloudinit import bootstrap_from_user_data
from bootstrap import kubeadm_config as kc
from bootstrap.pki import discovery_hash
from domain.cluster import ClusterSpec, ControlPlaneEndpoint, EndpointMode, NodePool
from domain.gateway import ProxySettings
from domain.lifecycle import AgentSilent
from domain.maas import Machine
from domain.naming import SIGNAL_AGENT_SILENT, SIGNAL_STOP, create_workflow_id, manage_workflow_id
from domain.node_labels import Taint
from domain.phases import Phase, Reason
from runtime.settings import Settings, installation_id
from store.agent_outbox import record_change
from store.db import Database
from store.models import (
    AgentCommandRow,
    AgentNode,
    Cluster,
    ClusterBootstrapRow,
    ClusterEvent,
    Project,
)
from store.secrets import hash_token
from store.types import utcnow
from tests.support.temporal import new_worker


@pytest.fixture
async def database(tmp_path) -> AsyncIterator[Database]:
    db = await Database.open_url(f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}")
    async with db.sessions.begin() as session:
        session.add(Project(id="prj-1", name="p"))
    yield db
    await db.close()


@pytest.fixture
def cp(database: Database, client: Client, tmp_path) -> ControlPlaneActivities:
    settings = Settings(_env_file=None, data_dir=tmp_path, api_url="https://api.example:8443")
    return ControlPlaneActivities(database.sessions, client, settings)


async def add_cluster(
    database: Database,
    phase: Phase = Phase.PENDING,
    spec: ClusterSpec | None = None,
    machines: list[Machine] | None = None,
) -> str:
    cluster_id = f"cl-{uuid.uuid4().hex[:8]}"
    async with database.sessions.begin() as session:
        session.add(
            Cluster(
                id=cluster_id,
                project_id="prj-1",
                name=cluster_id,
                active_name=cluster_id,
                cloud_account_id="acc",
                gateway_id="system",
                spec=spec.model_dump(mode="json") if spec else {},
                machines=[m.model_dump(mode="json") for m in machines or []],
                phase=phase.value,
                kubernetes_version="v1.30.4",
            )
        )
    return cluster_id


async def get(database: Database, cluster_id: str) -> Cluster:
    async with database.sessions() as session:
        cluster = await session.get(Cluster, cluster_id)
    assert cluster is not None
    return cluster


def run(fn, arg):
    return ActivityEnvironment().run(fn, arg)


def test_phase_order() -> None:
    assert is_forward(Phase.PENDING, Phase.DEPLOYING_OS)
    assert not is_forward(Phase.DEPLOYING_OS, Phase.ACQUIRING_MACHINES)
    assert is_forward(Phase.RUNNING, Phase.UNREACHABLE) and is_forward(
        Phase.UNREACHABLE, Phase.RUNNING
    )
    assert not is_forward(Phase.FAILED, Phase.RUNNING)
    assert is_forward(Phase.FAILED, Phase.DELETING)
    assert not is_forward(Phase.DELETING, Phase.FAILED)
    assert not is_forward(Phase.DELETED, Phase.DELETING)


async def test_a_failed_create_records_the_failing_gate_false_with_its_reason(
    cp: ControlPlaneActivities, database: Database
) -> None:
    cluster_id = await add_cluster(database)
    for phase, reason in [
        (Phase.ACQUIRING_MACHINES, None),
        (Phase.DEPLOYING_OS, Reason.WAITING_FOR_DEPLOYMENT),
        (Phase.FAILED, Reason.MACHINE_DEPLOY_FAILED),
    ]:
        await run(
            cp.record_status,
            RecordStatusInput(cluster_id=cluster_id, phase=phase, reason=reason, message="m0"),
        )
    cluster = await get(database, cluster_id)
    assert [(c["type"], c["status"], c["reason"]) for c in cluster.conditions] == [
        ("MachinesAcquired", "True", None),
        ("OSDeployed", "False", "MachineDeployFailed"),
    ]


async def test_record_status_is_forward_only_and_idempotent(
    cp: ControlPlaneActivities, database: Database
) -> None:
    cluster_id = await add_cluster(database)
    machine = Machine(system_id="abc", hostname="n1", pool="control-plane")
    acquiring = RecordStatusInput(
        cluster_id=cluster_id,
        phase=Phase.ACQUIRING_MACHINES,
        reason=Reason.WAITING_FOR_GATEWAY,
        message="waiting for gateway system",
        event="waiting for gateway system",
    )
    await run(cp.record_status, acquiring)
    await run(cp.record_status, acquiring)
    deploying = RecordStatusInput(
        cluster_id=cluster_id, phase=Phase.DEPLOYING_OS, machines=[machine], event="deploying"
    )
    await run(cp.record_status, deploying)
    await run(cp.record_status, acquiring)  # a late retry of an earlier gate
    cluster = await get(database, cluster_id)
    assert cluster.phase == "DeployingOS" and cluster.reason is None
    assert cluster.machines == [machine.model_dump(mode="json")]
    # One condition per gate: the gate the gateway wait held up is passed now.
    assert [(c["type"], c["status"], c["reason"]) for c in cluster.conditions] == [
        ("MachinesAcquired", "True", None),
        ("OSDeployed", "False", "WaitingForDeployment"),
    ]
    await run(
        cp.record_status,
        RecordStatusInput(cluster_id=cluster_id, phase=Phase.RUNNING, kubernetes_version="v1.31.0"),
    )
    cluster = await get(database, cluster_id)
    assert cluster.machines == [machine.model_dump(mode="json")]  # None leaves machines alone
    assert cluster.kubernetes_version == "v1.31.0"
    async with database.sessions() as session:
        events = (
            await session.scalars(
                select(ClusterEvent.message).where(ClusterEvent.cluster_id == cluster_id)
            )
        ).all()
    assert list(events) == ["waiting for gateway system", "deploying"]
    await run(cp.record_status, RecordStatusInput(cluster_id=cluster_id, phase=Phase.DELETED))
    assert (await get(database, cluster_id)).active_name is None
    with pytest.raises(ApplicationError, match="not in the store"):
        await run(cp.record_status, RecordStatusInput(cluster_id="cl-nope", phase=Phase.RUNNING))


async def test_gateway_revoked_sticks_through_later_status_writes(
    cp: ControlPlaneActivities, database: Database
) -> None:
    """Revoking a gateway marks its clusters GatewayRevoked; the workflows still running for
    them (management, a create waiting for the gateway) must not write it away."""
    cluster_id = await add_cluster(database, Phase.RUNNING)
    revoked = "gateway g1 was revoked; move its cloud account"
    async with database.sessions.begin() as session:
        await session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id)
            .values(reason=Reason.GATEWAY_REVOKED.value, message=revoked)
        )
    later = [
        RecordStatusInput(cluster_id=cluster_id, phase=Phase.RUNNING, message="agent reports"),
        RecordStatusInput(
            cluster_id=cluster_id,
            phase=Phase.UNREACHABLE,
            reason=Reason.AGENT_SILENT,
            message="no agent report",
            event="agent silent",
        ),
        RecordStatusInput(cluster_id=cluster_id, phase=Phase.RUNNING),
    ]
    for status in later:
        await run(cp.record_status, status)
        cluster = await get(database, cluster_id)
        assert (cluster.phase, cluster.reason, cluster.message) == (
            status.phase.value,
            Reason.GATEWAY_REVOKED.value,
            revoked,
        )


async def test_agent_token_hash_only_and_revoke(
    cp: ControlPlaneActivities, database: Database
) -> None:
    cluster_id = await add_cluster(database)
    token = (await run(cp.issue_agent_token, IssueAgentTokenInput(cluster_id=cluster_id))).token
    cluster = await get(database, cluster_id)
    assert cluster.agent_token_hash == hash_token(token) != token
    await run(cp.revoke_agent_token, RevokeAgentTokenInput(cluster_id=cluster_id))
    assert (await get(database, cluster_id)).agent_token_hash is None
    with pytest.raises(ApplicationError):
        await run(cp.issue_agent_token, IssueAgentTokenInput(cluster_id="cl-nope"))


async def test_no_agent_token_once_a_delete_is_requested(
    cp: ControlPlaneActivities, database: Database
) -> None:
    # A create started after the delete's stop request (a reconciler or a repeated POST that
    # raced the DELETE) must fail at its first step, before it takes anything in MAAS.
    cluster_id = await add_cluster(database)
    async with database.sessions.begin() as session:
        await session.execute(
            update(Cluster).where(Cluster.id == cluster_id).values(delete_requested_at=utcnow())
        )
    with pytest.raises(ApplicationError) as caught:
        await run(cp.issue_agent_token, IssueAgentTokenInput(cluster_id=cluster_id))
    assert caught.value.type == Reason.CANCELLED.value and caught.value.non_retryable
    assert (await get(database, cluster_id)).agent_token_hash is None


def render_input(
    cluster_id: str, machine: Machine, *, first: bool = False, host: str = "", proxy=None
) -> RenderCloudInitInput:
    return RenderCloudInitInput(
        cluster_id=cluster_id,
        cluster_name="web",
        agent_token="mga_secret",
        machine=machine,
        role="control-plane" if machine.pool == "control-plane" else "worker",
        first_control_plane=first,
        kubernetes_version="v1.31.2",
        proxy=proxy or ProxySettings(),
        control_plane_host=host,
    )


def written(user_data: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}


HA_SPEC = ClusterSpec(
    name="web",
    control_plane=NodePool(name="control-plane", count=3),
    worker_pools=[NodePool(name="gpu", count=1, image="custom/k8s-gpu")],
    control_plane_endpoint=ControlPlaneEndpoint(mode=EndpointMode.VIP),
)
CP1 = Machine(system_id="abc", hostname="cp-1", pool="control-plane", ip_addresses=["10.0.0.11"])
CP2 = Machine(system_id="def", hostname="cp-2", pool="control-plane")
GPU = Machine(system_id="ghi", hostname="gpu-1", pool="gpu")


async def test_render_cloud_init(cp: ControlPlaneActivities, database: Database) -> None:
    cluster_id = await add_cluster(database, spec=HA_SPEC, machines=[CP1, CP2, GPU])
    proxy = ProxySettings(
        http_proxy="http://proxy:3128", https_proxy="http://proxy:3128", no_proxy=["10.0.0.0/8"]
    )
    first, other, worker = await asyncio.gather(
        run(
            cp.render_cloud_init,
            render_input(cluster_id, CP1, first=True, host="10.0.0.50", proxy=proxy),
        ),
        run(cp.render_cloud_init, render_input(cluster_id, CP2, host="10.0.0.50", proxy=proxy)),
        run(cp.render_cloud_init, render_input(cluster_id, GPU, host="10.0.0.50", proxy=proxy)),
    )
    files = written(first.user_data)
    bootstrap = json.loads(files["/etc/metalgate/bootstrap.json"])
    assert bootstrap["api_url"] == "https://api.example:8443"
    assert bootstrap["agent_token"] == "mga_secret"
    assert bootstrap["first_control_plane"] is True
    assert 'http_proxy="http://proxy:3128"' in files["/etc/environment"]
    assert "10.244.0.0/16" in files["/etc/metalgate/proxy.env"]
    # The agent reads back exactly what was rendered, and the result never shows the data.
    assert bootstrap_from_user_data(first.user_data).system_id == "abc"
    assert "BEGIN RSA PRIVATE KEY" not in repr(first)

    (init, cluster) = kc.parse_documents(files["/etc/metalgate/kubeadm.yaml"])
    assert isinstance(cluster, kc.ClusterConfiguration) and isinstance(init, kc.InitConfiguration)
    assert init.bootstrap_tokens
    assert cluster.control_plane_endpoint == "10.0.0.50:6443"
    assert cluster.kubernetes_version == "v1.31.2"  # the workflow's current version
    ca_hash = discovery_hash(files["/etc/kubernetes/pki/ca.crt"])
    for joining in (other, worker):
        (join,) = kc.parse_documents(written(joining.user_data)["/etc/metalgate/kubeadm.yaml"])
        assert isinstance(join, kc.JoinConfiguration)
        assert join.discovery.bootstrap_token.ca_cert_hashes == [ca_hash]
        assert join.discovery.bootstrap_token.token == init.bootstrap_tokens[0].token
    env = written(worker.user_data)["/etc/metalgate/node.env"]
    assert "IMAGE_KIND=custom" in env and "IMAGE=custom/k8s-gpu" in env
    assert "KUBERNETES_REPOSITORY=https://pkgs.k8s.io/core:/stable:/v1.31/deb/" in env
    assert (
        f"/v1/agent/package/metalgate_agent-{package_version('metalgate')}-py3-none-any.whl" in env
    )
    assert "/etc/metalgate/kube-vip.yaml" in written(other.user_data)

    # Delete drops the material with the agent token: a recreated name gets a new CA.
    await run(cp.revoke_agent_token, RevokeAgentTokenInput(cluster_id=cluster_id))
    async with database.sessions() as session:
        assert await session.get(ClusterBootstrapRow, cluster_id) is None


async def test_ha_render_needs_an_endpoint_unless_the_spec_names_one(
    cp: ControlPlaneActivities, database: Database
) -> None:
    cluster_id = await add_cluster(database, spec=HA_SPEC, machines=[CP1, CP2, GPU])
    with pytest.raises(ApplicationError) as caught:
        await run(cp.render_cloud_init, render_input(cluster_id, CP1, first=True))
    assert caught.value.type == Reason.CONTROL_PLANE_ENDPOINT_MISSING
    assert caught.value.non_retryable
    with pytest.raises(ApplicationError, match="not in the store"):
        await run(cp.render_cloud_init, render_input("cl-nope", CP1, first=True, host="h"))
    # An external load balancer is named in the spec: no gateway step needed.
    external = HA_SPEC.model_copy(
        update={
            "control_plane_endpoint": ControlPlaneEndpoint(
                mode=EndpointMode.EXTERNAL, address="lb.corp", port=443
            )
        }
    )
    cluster_id = await add_cluster(database, spec=external, machines=[CP1, CP2])
    rendered = await run(cp.render_cloud_init, render_input(cluster_id, CP2))
    (join,) = kc.parse_documents(written(rendered.user_data)["/etc/metalgate/kubeadm.yaml"])
    assert isinstance(join, kc.JoinConfiguration)
    assert join.discovery.bootstrap_token.api_server_endpoint == "lb.corp:443"


async def test_single_control_plane_falls_back_to_its_node(
    cp: ControlPlaneActivities, database: Database
) -> None:
    spec = ClusterSpec(name="web", worker_pools=[NodePool(name="w", count=1)])
    worker = Machine(system_id="w1", hostname="w-1", pool="w")
    cluster_id = await add_cluster(database, spec=spec, machines=[CP1, worker])
    first = await run(cp.render_cloud_init, render_input(cluster_id, CP1, first=True))
    (_, cluster) = kc.parse_documents(written(first.user_data)["/etc/metalgate/kubeadm.yaml"])
    assert isinstance(cluster, kc.ClusterConfiguration)
    assert cluster.control_plane_endpoint == "10.0.0.11:6443"
    joining = await run(cp.render_cloud_init, render_input(cluster_id, worker))
    (join,) = kc.parse_documents(written(joining.user_data)["/etc/metalgate/kubeadm.yaml"])
    assert isinstance(join, kc.JoinConfiguration)
    assert join.discovery.bootstrap_token.api_server_endpoint == "10.0.0.11:6443"
    # No IP from MAAS yet: its hostname, which MAAS DNS resolves once deployed.
    no_ip = await add_cluster(database, spec=spec, machines=[CP2])
    rendered = await run(cp.render_cloud_init, render_input(no_ip, CP2, first=True))
    (_, cluster) = kc.parse_documents(written(rendered.user_data)["/etc/metalgate/kubeadm.yaml"])
    assert isinstance(cluster, kc.ClusterConfiguration)
    assert cluster.control_plane_endpoint == "cp-2:6443"


async def test_each_node_joins_with_its_zone_and_its_pools_labels_and_taints(
    cp: ControlPlaneActivities, database: Database
) -> None:
    gpu_pool = NodePool(
        name="gpu",
        count=1,
        labels={"example.com/gpu": "a100"},
        taints=[Taint(key="example.com/gpu", effect="NoSchedule")],
    )
    spec = ClusterSpec(name="web", worker_pools=[gpu_pool])
    cp1 = CP1.model_copy(update={"zone": "az1"})
    gpu = GPU.model_copy(update={"zone": "az2"})
    # MAAS allows zone names Kubernetes does not take as a label value.
    odd = GPU.model_copy(update={"system_id": "jkl", "hostname": "gpu-2", "zone": "_lab"})
    cluster_id = await add_cluster(database, spec=spec, machines=[cp1, gpu, odd])

    def registration(user_data: str) -> kc.NodeRegistration:
        first = kc.parse_documents(written(user_data)["/etc/metalgate/kubeadm.yaml"])[0]
        assert isinstance(first, kc.InitConfiguration | kc.JoinConfiguration)
        assert first.node_registration is not None
        return first.node_registration

    init = registration(
        (await run(cp.render_cloud_init, render_input(cluster_id, cp1, first=True))).user_data
    )
    assert init.kubelet_extra_args == {"node-labels": "topology.kubernetes.io/zone=az1"}
    assert init.taints is None  # the control-plane pool has none: kubeadm's default stays
    join = registration((await run(cp.render_cloud_init, render_input(cluster_id, gpu))).user_data)
    assert join.kubelet_extra_args == {
        "node-labels": "example.com/gpu=a100,topology.kubernetes.io/zone=az2"
    }
    assert [(t.key, t.effect) for t in join.taints or []] == [("example.com/gpu", "NoSchedule")]
    other = registration((await run(cp.render_cloud_init, render_input(cluster_id, odd))).user_data)
    assert other.kubelet_extra_args == {"node-labels": "example.com/gpu=a100"}


async def test_enqueue_is_idempotent(cp: ControlPlaneActivities, database: Database) -> None:
    cluster_id = await add_cluster(database, Phase.RUNNING)
    command = EnqueueAgentCommandInput(
        cluster_id=cluster_id, command_id="c1", kind="upgrade", args={"v": "1"}
    )
    await run(cp.enqueue_agent_command, command)
    async with database.sessions.begin() as session:
        await session.execute(update(AgentCommandRow).values(state="running"))
    await run(cp.enqueue_agent_command, command)
    async with database.sessions() as session:
        rows = (await session.scalars(select(AgentCommandRow))).all()
    assert [(r.id, r.state) for r in rows] == [("c1", "running")]


async def test_cluster_claims(
    cp: ControlPlaneActivities, database: Database, client: Client
) -> None:
    live = await add_cluster(database, Phase.RUNNING)
    failed = await add_cluster(database, Phase.FAILED)
    ours = installation_id(cp._settings)
    restored = f"cl-{uuid.uuid4().hex[:8]}"  # live, but the store was restored from before it

    def owned(system_id: str, cluster_id: str, installation: str = ours) -> OwnedMachine:
        return OwnedMachine(
            system_id=system_id,
            hostname=system_id,
            pool="w",
            cluster_id=cluster_id,
            installation_id=installation,
        )

    async with new_worker(client, StopTarget) as worker:
        await client.start_workflow(
            StopTarget.run, True, id=create_workflow_id(restored), task_queue=worker.task_queue
        )
        result = await run(
            cp.cluster_claims,
            ClusterClaimsInput(
                gateway_id="system",
                machines=[
                    owned("a", live),
                    owned("b", failed),
                    owned("c", "cl-gone"),
                    owned("d", "cl-theirs", installation="mg-other"),
                    owned("e", restored),
                    owned("f", "cl-legacy", installation=""),
                    owned("g", failed, installation=""),
                ],
            ),
        )
        await client.get_workflow_handle(create_workflow_id(restored)).terminate("test over")
    # Before: every cluster id the store did not know was an orphan (d, e, f released).
    assert result.claimed == ["a", "d", "e", "f"]
    assert result.unclaimed == ["b", "c", "g"]


@workflow.defn(name="StopTarget", sandboxed=False)
class StopTarget:
    """Stands for create (cancellable) and manage (stops on SIGNAL_STOP)."""

    def __init__(self) -> None:
        self.stop = False
        self.silent: list[AgentSilent] = []

    @workflow.run
    async def run(self, ignore_stop: bool) -> None:
        await workflow.wait_condition(lambda: self.stop and not ignore_stop)

    @workflow.signal(name=SIGNAL_STOP)
    def on_stop(self) -> None:
        self.stop = True

    @workflow.signal(name=SIGNAL_AGENT_SILENT)
    def on_silent(self, silent: AgentSilent) -> None:
        self.silent.append(silent)

    @workflow.query
    def silences(self) -> int:
        return len(self.silent)


async def test_stop_cluster_workflows_waits_until_closed(
    cp: ControlPlaneActivities, client: Client, database: Database
) -> None:
    cluster_id = await add_cluster(database, Phase.RUNNING)
    async with new_worker(client, StopTarget) as worker:
        create = await client.start_workflow(
            StopTarget.run, True, id=create_workflow_id(cluster_id), task_queue=worker.task_queue
        )
        manage = await client.start_workflow(
            StopTarget.run, False, id=manage_workflow_id(cluster_id), task_queue=worker.task_queue
        )
        await run(
            cp.stop_cluster_workflows,
            StopClusterWorkflowsInput(cluster_id=cluster_id, wait_seconds=20),
        )
        assert (await create.describe()).status == WorkflowExecutionStatus.CANCELED
        assert (await manage.describe()).status == WorkflowExecutionStatus.COMPLETED
        # Nothing running (or nothing at all) is done at once.
        await run(
            cp.stop_cluster_workflows,
            StopClusterWorkflowsInput(cluster_id=cluster_id, wait_seconds=5),
        )
        await run(
            cp.stop_cluster_workflows,
            StopClusterWorkflowsInput(cluster_id="cl-none", wait_seconds=5),
        )


async def test_stop_cancels_a_create_that_starts_while_it_waits(
    cp: ControlPlaneActivities, client: Client, database: Database
) -> None:
    # Chaos run: a create started after the stop's first look (the reconciler restarting a
    # create the API could not start) was never cancelled, so the delete waited out the
    # whole bound and then terminated it.
    cluster_id = await add_cluster(database, Phase.PENDING)
    async with new_worker(client, StopTarget) as worker:
        manage = await client.start_workflow(
            StopTarget.run, True, id=manage_workflow_id(cluster_id), task_queue=worker.task_queue
        )
        stopping = asyncio.ensure_future(
            run(
                cp.stop_cluster_workflows,
                StopClusterWorkflowsInput(cluster_id=cluster_id, wait_seconds=60),
            )
        )
        await asyncio.sleep(0.5)
        create = await client.start_workflow(
            StopTarget.run, True, id=create_workflow_id(cluster_id), task_queue=worker.task_queue
        )
        # Before: nothing cancelled it; the stop waited out its bound, then terminated it.
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(create.result(), timeout=20)
        assert (await create.describe()).status == WorkflowExecutionStatus.CANCELED
        await manage.terminate("this test is about the create")
        await asyncio.wait_for(stopping, timeout=20)


async def test_stop_terminates_a_workflow_that_cannot_close_and_says_so(
    cp: ControlPlaneActivities, client: Client, database: Database
) -> None:
    cluster_id = await add_cluster(database, Phase.RUNNING)
    # No worker polls this queue: like a management workflow whose task fails in a loop,
    # neither the stop signal nor the cancel is ever processed.
    manage = await client.start_workflow(
        StopTarget.run, True, id=manage_workflow_id(cluster_id), task_queue=f"tq-{uuid.uuid4()}"
    )
    # Before: the activity raised WorkflowsStillOpen and the delete retried it forever.
    await run(
        cp.stop_cluster_workflows,
        StopClusterWorkflowsInput(cluster_id=cluster_id, wait_seconds=1.5),
    )
    assert (await manage.describe()).status == WorkflowExecutionStatus.TERMINATED
    async with database.sessions() as session:
        reasons = (
            await session.scalars(
                select(ClusterEvent.reason).where(ClusterEvent.cluster_id == cluster_id)
            )
        ).all()
    assert Reason.WORKFLOW_TERMINATED.value in reasons


async def test_sweep_signals_each_silent_cluster_once(
    cp: ControlPlaneActivities, client: Client, database: Database
) -> None:
    quiet = await add_cluster(database, Phase.RUNNING)
    chatty = await add_cluster(database, Phase.RUNNING)
    creating = await add_cluster(database, Phase.DEPLOYING_OS)
    orphan = await add_cluster(database, Phase.RUNNING)  # no management workflow
    old = utcnow() - timedelta(minutes=10)
    async with database.sessions.begin() as session:
        await session.execute(
            update(Cluster)
            .where(Cluster.id.in_([quiet, creating, orphan]))
            .values(last_heartbeat_at=old)
        )
        await session.execute(
            update(Cluster).where(Cluster.id == chatty).values(last_heartbeat_at=utcnow())
        )
    async with new_worker(client, StopTarget) as worker:
        manage = await client.start_workflow(
            StopTarget.run, False, id=manage_workflow_id(quiet), task_queue=worker.task_queue
        )
        swept = await run(cp.sweep_silent_agents, SweepSilentAgentsInput(silence_seconds=60))
        assert swept.signalled == [quiet]
        again = await run(cp.sweep_silent_agents, SweepSilentAgentsInput(silence_seconds=60))
        assert again.signalled == []
        await asyncio.sleep(0)
        assert await manage.query(StopTarget.silences) == 1
        await manage.signal(SIGNAL_STOP)
        await manage.result()
    assert (await get(database, quiet)).silent is True
    assert (await get(database, orphan)).silent is False


async def test_render_refuses_bad_input_without_echoing_it(
    cp: ControlPlaneActivities, database: Database
) -> None:
    cluster_id = await add_cluster(database, spec=HA_SPEC, machines=[CP1])
    # ProxySettings refuses this at the API; the renderer must refuse it too if one got past.
    proxy = ProxySettings.model_construct(http_proxy='http://user:pa"ss@proxy:3128', no_proxy=[])
    with pytest.raises(ApplicationError) as caught:
        await run(
            cp.render_cloud_init, render_input(cluster_id, CP1, first=True, host="h", proxy=proxy)
        )
    assert caught.value.type == "InvalidBootstrapInput" and caught.value.non_retryable
    assert 'pa"ss' not in str(caught.value) and "proxy" in str(caught.value)


async def test_agent_from_an_operator_package_index(
    database: Database, client: Client, tmp_path
) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, agent_package_index="https://pypi.corp/simple"
    )
    cp = ControlPlaneActivities(database.sessions, client, settings)
    cluster_id = await add_cluster(database, spec=HA_SPEC, machines=[CP1])
    rendered = await run(cp.render_cloud_init, render_input(cluster_id, CP1, first=True, host="h"))
    env = written(rendered.user_data)["/etc/metalgate/node.env"]
    version = package_version("metalgate")
    assert (
        f"AGENT_PIP_ARGS=(--index-url https://pypi.corp/simple metalgate-agent=={version})" in env
    )


async def test_sweep_marks_a_node_whose_own_agent_went_silent(
    cp: ControlPlaneActivities, database: Database
) -> None:
    """The cluster is heard from (its other nodes report); one node's agent is not."""
    machines = [
        Machine(system_id="s1", hostname="n1", pool="control-plane"),
        Machine(system_id="s2", hostname="n2", pool="workers"),
    ]
    cluster_id = await add_cluster(database, Phase.RUNNING, machines=machines)
    now = utcnow()
    async with database.sessions.begin() as session:
        await session.execute(
            update(Cluster).where(Cluster.id == cluster_id).values(last_heartbeat_at=now)
        )
        for hostname, at in (("n1", now), ("n2", now - timedelta(minutes=5))):
            state = {"node": {"hostname": hostname, "ready": True}, "message": ""}
            await record_change(
                session,
                cluster_id=cluster_id,
                hostname=hostname,
                fingerprint=hostname,
                state=state,
                now=at,
            )
    swept = await run(
        cp.sweep_silent_agents,
        SweepSilentAgentsInput(silence_seconds=600, node_silence_seconds=60),
    )
    assert swept.signalled == [] and swept.silent_nodes == [f"{cluster_id}/n2"]
    async with database.sessions() as session:
        node = await session.get(AgentNode, (cluster_id, "n2"))
    assert node is not None and node.silent and node.report["node"]["ready"] is False
