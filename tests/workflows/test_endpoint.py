"""The sagas make, follow and remove the control-plane endpoint, and deploy each pool's image."""

from __future__ import annotations

from temporalio.client import Client

from activities.models import DEPLOY_MACHINE, ENSURE_ENDPOINT, RELEASE_MACHINES, REMOVE_ENDPOINT
from domain.cluster import ControlPlaneEndpoint, EndpointMode, NodePool
from domain.lifecycle import ClusterRef, DeleteClusterInput, DeleteClusterResult
from domain.naming import (
    DELETE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    UPDATE_SCALE,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import Phase
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import FAST, Harness, harness, ready_report
from workflows.contracts import ActionAccepted, ManageState, ScaleRequest


def with_endpoint(cluster: ClusterRef, **endpoint: object) -> ClusterRef:
    spec = cluster.spec.model_copy(
        update={"control_plane_endpoint": ControlPlaneEndpoint.model_validate(endpoint)}
    )
    return cluster.model_copy(update={"spec": spec})


async def run_to_running(h: Harness, cluster: ClusterRef) -> None:
    handle = await h.start_create(cluster)
    await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
    machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
    await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
    assert (await handle.result()).phase == Phase.RUNNING


async def delete(h: Harness, cluster: ClusterRef) -> None:
    await h.client.execute_workflow(
        DELETE_WORKFLOW,
        DeleteClusterInput(cluster=cluster, timeouts=FAST),
        id=delete_workflow_id(cluster.cluster_id),
        task_queue=h.task_queue,
        result_type=DeleteClusterResult,
    )


def removed_after_release(calls: list[str]) -> bool:
    """The endpoint goes after the machines: none of them announces the VIP any more."""
    return calls.index(REMOVE_ENDPOINT) > max(
        i for i, c in enumerate(calls) if c == RELEASE_MACHINES
    )


async def test_vip_is_made_before_any_deploy_given_to_every_node_and_deleted(
    client: Client,
) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2, control_plane=3)
        await run_to_running(h, cluster)
        host, _ = h.maas.endpoints[cluster.cluster_id]
        calls = h.maas.calls
        deploys = [i for i, c in enumerate(calls) if c.startswith(DEPLOY_MACHINE)]
        assert len(deploys) == 5 and calls.index(ENSURE_ENDPOINT) < min(deploys)
        assert {r.control_plane_host for r in h.cp.rendered} == {host}
        assert len(h.cp.rendered) == 5
        # A VIP does not follow the machines: made once, before they deploy.
        assert calls.count(ENSURE_ENDPOINT) == 1
        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        state = await manage.query(QUERY_STATE, result_type=ManageState)
        assert state.control_plane_host == host

        await delete(h, cluster)
        assert cluster.cluster_id not in h.maas.endpoints
        assert removed_after_release(h.maas.calls)


async def test_dns_record_learns_each_control_plane_machine_as_it_deploys(
    client: Client,
) -> None:
    async with harness(client) as h:
        cluster = with_endpoint(h.cluster(workers=2, control_plane=3), mode="dns")
        await run_to_running(h, cluster)
        cps = sorted(
            ip
            for m in h.maas.owned(cluster.cluster_id)
            if m.pool == "control-plane"
            for ip in m.machine().ip_addresses
        )
        host, addresses = h.maas.endpoints[cluster.cluster_id]
        assert addresses == cps and len(cps) == 3
        assert {r.control_plane_host for r in h.cp.rendered} == {host}
        seen = [a for c, a in h.maas.endpoint_calls if c == cluster.cluster_id]
        # Made before any machine deployed, told after each control-plane deploy starts,
        # and once more when all are deployed; it only ever grows towards the three.
        assert seen[0] == [] and len(seen) == 1 + 3 + 1 and seen[-1] == cps
        assert all(set(a) <= set(cps) for a in seen)
        assert [len(a) for a in seen] == sorted(len(a) for a in seen)
        first_deploy = h.maas.calls.index(f"{DEPLOY_MACHINE} m0")
        assert h.maas.calls.index(ENSURE_ENDPOINT) < first_deploy
        await h.stop_management(cluster.cluster_id)


async def test_a_failed_create_removes_the_endpoint(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=1)
        timeouts = FAST.model_copy(update={"agent_ready": 1.0})
        result = await (await h.start_create(cluster, timeouts)).result()
        assert result.phase == Phase.FAILED
        assert ENSURE_ENDPOINT in h.maas.calls
        assert removed_after_release(h.maas.calls)
        assert cluster.cluster_id not in h.maas.endpoints


async def test_each_pool_deploys_its_image_and_scale_up_joins_the_endpoint(
    client: Client,
) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=1)
        spec = cluster.spec.model_copy(
            update={
                "distro_series": "noble",
                "worker_pools": [NodePool(name="workers", count=1, image="custom/k8s-1.30")],
            }
        )
        cluster = cluster.model_copy(update={"spec": spec})
        await run_to_running(h, cluster)
        images = {
            h.maas.machines[d.system_id].pool: (d.osystem, d.distro_series)
            for d in h.maas.deploy_inputs
        }
        assert images == {"control-plane": ("ubuntu", "noble"), "workers": ("custom", "k8s-1.30")}

        host, _ = h.maas.endpoints[cluster.cluster_id]
        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        await manage.execute_update(
            UPDATE_SCALE, ScaleRequest(pool="workers", count=2), result_type=ActionAccepted
        )

        async def scaled() -> None:
            state = await manage.query(QUERY_STATE, result_type=ManageState)
            assert not state.pending and len(state.machines) == 3

        await assert_eventually(scaled)
        assert len(h.cp.rendered) == 3
        assert h.cp.rendered[-1].control_plane_host == host
        assert h.maas.deploy_inputs[-1].osystem == "custom"
        await h.stop_management(cluster.cluster_id)


async def test_external_endpoint_is_the_operators_address(client: Client) -> None:
    async with harness(client) as h:
        cluster = with_endpoint(
            h.cluster(workers=1), mode=EndpointMode.EXTERNAL, address="lb.example.com"
        )
        await run_to_running(h, cluster)
        assert {r.control_plane_host for r in h.cp.rendered} == {"lb.example.com"}
        await h.stop_management(cluster.cluster_id)
