"""The create saga's gates, replacements and compensation, with stand-in activities."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import CancelledError

from domain.cluster import MachineConstraints
from domain.lifecycle import ClusterRef
from domain.naming import QUARANTINE_TAG, QUERY_STATE, SIGNAL_AGENT_REPORT, manage_workflow_id
from domain.phases import CREATE_PHASES, Phase, Reason
from tests.workflows.fakes import FAST, harness, is_running, ready_report
from workflows.contracts import ManageState


async def test_three_node_cluster_runs_once_the_agent_reports(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        handle = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        assert Phase.RUNNING not in h.cp.phases(cluster.cluster_id)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        assert len(machines) == 3

        await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        result = await handle.result()

        assert result.phase == Phase.RUNNING
        assert sorted(m.system_id for m in result.machines) == ["m0", "m1", "m2"]
        assert all(m.status == "Deployed" for m in h.maas.owned(cluster.cluster_id))
        phases = list(dict.fromkeys(h.cp.phases(cluster.cluster_id)))
        assert phases == list(CREATE_PHASES)
        assert h.maas.acquire_requests == ["create"]
        first = [r.machine.system_id for r in h.cp.rendered if r.first_control_plane]
        assert first == ["m0"]
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.kubernetes_version == "v1.30.4"
        assert last.machines is not None and len(last.machines) == 3

        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        assert await is_running(manage)
        state = await manage.query(QUERY_STATE, result_type=ManageState)
        assert state.phase == Phase.RUNNING and len(state.machines) == 3
        await h.stop_management(cluster.cluster_id)


async def test_capacity_shortfall_fails_fast_with_numbers_and_holds_nothing(
    client: Client,
) -> None:
    async with harness(client, machines=2) as h:
        cluster = h.cluster(workers=2)
        result = await (await h.start_create(cluster)).result()

        assert result.phase == Phase.FAILED
        assert result.reason == Reason.INSUFFICIENT_CAPACITY
        assert "asks 2" in result.message and "has 1" in result.message
        assert h.maas.owned(cluster.cluster_id) == []
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.FAILED
        assert last.reason == Reason.INSUFFICIENT_CAPACITY
        assert Phase.DEPLOYING_OS not in h.cp.phases(cluster.cluster_id)


async def test_a_machine_that_fails_to_deploy_is_replaced(client: Client) -> None:
    async with harness(client, fail_deploy={"m1"}) as h:
        cluster = h.cluster(workers=2)
        handle = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        result = await handle.result()

        assert result.phase == Phase.RUNNING
        assert sorted(m.system_id for m in result.machines) == ["m0", "m2", "m3"]
        assert h.maas.acquire_requests == ["create", "replace-1"]
        failed = h.maas.machines["m1"]
        assert QUARANTINE_TAG in failed.tags and failed.owner is None
        events = [r.event or "" for r in h.cp.records[cluster.cluster_id]]
        assert any("node-1 (m1) failed to deploy" in e for e in events)
        await h.stop_management(cluster.cluster_id)


async def test_deploy_failures_beyond_the_replacement_budget_fail_and_release(
    client: Client,
) -> None:
    async with harness(client, fail_deploy={"m1", "m3", "m4"}) as h:
        cluster = h.cluster(workers=2)
        result = await (await h.start_create(cluster)).result()

        assert result.phase == Phase.FAILED
        assert result.reason == Reason.MACHINE_DEPLOY_FAILED
        assert "replacements are used" in result.message
        assert h.maas.owned(cluster.cluster_id) == []


async def test_agent_that_never_reports_times_out_and_everything_is_released(
    client: Client,
) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        timeouts = FAST.model_copy(update={"agent_ready": 2.0})
        handle = await h.start_create(cluster, timeouts)
        result = await handle.result()

        assert result.phase == Phase.FAILED
        assert result.reason == Reason.AGENT_TIMEOUT
        assert "0/3 nodes ready" in result.message
        assert h.maas.owned(cluster.cluster_id) == []
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.FAILED and last.machines == []


async def test_control_plane_ready_but_a_node_never_ready_times_out(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        handle = await h.start_create(cluster, FAST.model_copy(update={"agent_ready": 3.0}))
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        report = ready_report(machines)
        report.nodes[-1].ready = False
        await handle.signal(SIGNAL_AGENT_REPORT, report)
        result = await handle.result()

        assert result.reason == Reason.AGENT_TIMEOUT
        assert "every node ready" in result.message and "node-2" in result.message
        assert Phase.JOINING_NODES in h.cp.phases(cluster.cluster_id)
        assert h.maas.owned(cluster.cluster_id) == []


async def test_cancel_mid_deploy_releases_everything(client: Client) -> None:
    async with harness(client) as h:
        h.maas.deploy_gate.clear()
        cluster = h.cluster(workers=2)
        handle = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.DEPLOYING_OS)
        assert len(h.maas.owned(cluster.cluster_id)) == 3

        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()

        assert isinstance(failure.value.cause, CancelledError)
        assert h.maas.owned(cluster.cluster_id) == []
        last = h.cp.last(cluster.cluster_id)
        assert last is not None and last.phase == Phase.FAILED
        assert last.reason == Reason.CANCELLED
        h.maas.deploy_gate.set()


SPREAD = MachineConstraints(zones=["az1", "az2", "az3"])
# No machine in az3: the third control-plane node must fall back to another zone.
ZONED = {"m0": "az1", "m1": "az1", "m2": "az2", "m3": "az2", "m4": "az1", "m5": "az2"}


def zoned(cluster: ClusterRef) -> ClusterRef:
    spec = cluster.spec
    pools = {
        "control_plane": spec.control_plane.model_copy(update={"constraints": SPREAD}),
        "worker_pools": [p.model_copy(update={"constraints": SPREAD}) for p in spec.worker_pools],
    }
    return cluster.model_copy(update={"spec": spec.model_copy(update=pools)})


async def test_a_zone_without_room_is_named_in_the_clusters_events(client: Client) -> None:
    async with harness(client, zones=ZONED) as h:
        cluster = zoned(h.cluster(workers=2, control_plane=3))
        handle = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await handle.result()).phase == Phase.RUNNING

        events = [r.event or "" for r in h.cp.records[cluster.cluster_id]]
        note = next(e for e in events if "no free matching machine" in e)
        assert note.startswith("pool control-plane: no free matching machine in zone az3")
        assert "pool workers" not in note  # two workers in az1 and az2 are balanced
        # The note comes between the acquire and the deploys it decided.
        assert events.index(note) < next(i for i, e in enumerate(events) if "acquired" in e)
        control_plane = [m.zone for m in machines if m.pool == "control-plane"]
        assert sorted(control_plane) == ["az1", "az1", "az2"]
        # Each node's render knows its zone (its topology.kubernetes.io/zone label).
        assert {r.machine.system_id: r.machine.zone for r in h.cp.rendered} == {
            m.system_id: m.zone for m in machines
        }
        await h.stop_management(cluster.cluster_id)


async def test_without_zones_no_note_is_written(client: Client) -> None:
    async with harness(client, zones=ZONED) as h:
        cluster = h.cluster(workers=1)
        handle = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await handle.result()).phase == Phase.RUNNING
        events = [r.event or "" for r in h.cp.records[cluster.cluster_id]]
        assert not [e for e in events if "no free matching machine" in e]
        await h.stop_management(cluster.cluster_id)
