"""The remediation ladder in the management workflow, on the real dev server with fake MAAS.

Each test makes nodes NotReady through agent reports and follows the ladder by its events
and MAAS calls: power cycle, redeploy, replace (old machine quarantined), and the guards.
"""

from __future__ import annotations

import time
from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities.models import ACQUIRE_MACHINES, DEPLOY_MACHINE, AcquireMachinesInput
from activities.remediation_models import (
    POWER_CYCLE_MACHINE,
    QUARANTINE_MACHINE,
    RELEASE_FOR_REDEPLOY,
)
from domain.agent_wire import NodeReport
from domain.cluster import ControlPlaneEndpoint, EndpointMode, NodePool, RemediationPolicy
from domain.maas import Machine
from domain.naming import (
    MANAGE_WORKFLOW,
    QUARANTINE_TAG,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_COMMAND_RESULT,
    manage_workflow_id,
)
from domain.remediation import ObservedNode
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import FAST, Harness, agent_token, harness
from workflows.contracts import AgentReport, CommandResultSignal, ManageInput, ManageState

THRESHOLD = 2


async def start(
    h: Harness,
    *,
    control_plane: int = 1,
    workers: int = 2,
    cluster_switch: bool = True,
    endpoint: EndpointMode | None = None,
    **policy: Any,
) -> tuple[WorkflowHandle[Any, Any], list[Machine]]:
    cluster = h.cluster(workers=workers, control_plane=control_plane)
    remediation = RemediationPolicy.model_validate({"unhealthy_seconds": THRESHOLD, **policy})
    spec = cluster.spec
    if endpoint is not None:
        spec.control_plane_endpoint = ControlPlaneEndpoint(mode=endpoint)
    spec.control_plane = NodePool(
        name="control-plane", count=control_plane, remediation=remediation
    )
    spec.worker_pools = [NodePool(name="workers", count=workers, remediation=remediation)]
    spec.remediation_enabled = cluster_switch
    acquired = await h.maas.acquire_machines(
        AcquireMachinesInput(
            account=cluster.account,
            cluster_id=cluster.cluster_id,
            request_id="create",
            pools=spec.pools,
        )
    )
    for m in acquired.machines:
        h.maas.machines[m.system_id].status = "Deployed"
    state = ManageState(
        cluster=cluster,
        agent_token=agent_token(cluster.cluster_id),
        machines=acquired.machines,
        kubernetes_version="v1.30.4",
        timeouts=FAST,
    )
    handle = await h.client.start_workflow(
        MANAGE_WORKFLOW,
        ManageInput(state=state),
        id=manage_workflow_id(cluster.cluster_id),
        task_queue=h.task_queue,
    )
    return handle, acquired.machines


async def report(
    handle: WorkflowHandle[Any, Any], machines: list[Machine], not_ready: set[str]
) -> None:
    nodes = [
        NodeReport(
            hostname=m.hostname,
            system_id=m.system_id,
            ready=m.hostname not in not_ready,
            kubelet_version="v1.30.4",
        )
        for m in machines
    ]
    await handle.signal(
        SIGNAL_AGENT_REPORT,
        AgentReport(control_plane_ready=True, kubernetes_version="v1.30.4", nodes=nodes),
    )


def events(h: Harness, cluster_id: str) -> list[str]:
    return [r.event for r in h.cp.records.get(cluster_id, []) if r.event]


async def event_matching(h: Harness, cluster_id: str, *parts: str) -> str:
    async def check() -> str:
        lines = [e for e in events(h, cluster_id) if all(p in e for p in parts)]
        assert lines, events(h, cluster_id)
        return lines[0]

    return await assert_eventually(check, within=30)


def worker(machines: list[Machine], index: int = 0) -> Machine:
    return [m for m in machines if m.pool == "workers"][index]


def cluster_id(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.split("/")[1]


async def test_ladder_power_cycle_then_redeploy_then_replace_and_quarantine(
    client: Client,
) -> None:
    async with harness(client, machines=6) as h:
        handle, machines = await start(h)
        cid, sick = cluster_id(handle), worker(machines)
        await report(handle, machines, {sick.hostname})

        line = await event_matching(h, cid, "remediation power-cycle of", sick.hostname, "started")
        assert "NodeUnhealthy" in line
        await event_matching(h, cid, "power-cycle of", sick.hostname, "succeeded")
        assert f"{POWER_CYCLE_MACHINE} {sick.system_id}" in h.maas.calls
        # The node view shows where the node is on the ladder.
        shown = [
            m.remediation
            for r in h.cp.records[cid]
            for m in r.machines or []
            if m.system_id == sick.system_id
        ]
        assert "power-cycle" in shown

        # Still NotReady: the same machine is redeployed.
        await event_matching(h, cid, "redeploy of", sick.hostname, "succeeded")
        assert f"{RELEASE_FOR_REDEPLOY} {sick.system_id}" in h.maas.calls
        assert f"{DEPLOY_MACHINE} {sick.system_id}" in h.maas.calls

        # Still NotReady: a fresh machine replaces it and the old one is quarantined.
        done = await event_matching(h, cid, "replace of", sick.hostname, "succeeded")
        assert f"{QUARANTINE_MACHINE} {sick.system_id}" in h.maas.calls
        assert QUARANTINE_TAG in h.maas.machines[sick.system_id].tags
        assert h.maas.machines[sick.system_id].owner is None  # released
        state = await handle.query(QUERY_STATE, result_type=ManageState)
        ids = {m.system_id for m in state.machines}
        assert sick.system_id not in ids and len(ids) == len(machines)
        assert ACQUIRE_MACHINES in h.maas.calls
        assert state.remediation == []
        fresh = next(
            m for m in state.machines if m.system_id not in {x.system_id for x in machines}
        )
        assert fresh.hostname in done
        await h.stop_management(cid)


async def test_node_ready_again_ends_the_ladder(client: Client) -> None:
    async with harness(client) as h:
        handle, machines = await start(h)
        cid, sick = cluster_id(handle), worker(machines)
        await report(handle, machines, {sick.hostname})
        await event_matching(h, cid, "power-cycle of", sick.hostname, "succeeded")
        await report(handle, machines, set())
        await event_matching(h, cid, f"remediation of {sick.hostname} done")
        state = await handle.query(QUERY_STATE, result_type=ManageState)
        assert state.remediation == []
        assert all(m.remediation == "" for m in state.machines)
        assert f"{RELEASE_FOR_REDEPLOY} {sick.system_id}" not in h.maas.calls
        await h.stop_management(cid)


async def test_pool_switch_off_holds_every_step(client: Client) -> None:
    async with harness(client) as h:
        handle, machines = await start(h, enabled=False)
        cid, sick = cluster_id(handle), worker(machines)
        await report(handle, machines, {sick.hostname})
        line = await event_matching(h, cid, f"remediation of {sick.hostname} held")
        assert "RemediationBlocked" in line and "remediation.enabled: false" in line
        assert not any(c.startswith(POWER_CYCLE_MACHINE) for c in h.maas.calls)
        state = await handle.query(QUERY_STATE, result_type=ManageState)
        assert state.remediation[0].label().startswith("blocked:")
        await h.stop_management(cid)


async def test_cluster_switch_off_holds_every_step(client: Client) -> None:
    async with harness(client) as h:
        handle, machines = await start(h, cluster_switch=False)
        cid, sick = cluster_id(handle), worker(machines)
        await report(handle, machines, {sick.hostname})
        line = await event_matching(h, cid, f"remediation of {sick.hostname} held")
        assert "remediation_enabled: false" in line
        assert not any(c.startswith(POWER_CYCLE_MACHINE) for c in h.maas.calls)
        await h.stop_management(cid)


async def test_at_most_max_in_remediation_of_a_pool_at_once(client: Client) -> None:
    async with harness(client, machines=8) as h:
        handle, machines = await start(h, workers=3, max_in_remediation="1")
        cid = cluster_id(handle)
        first, second = worker(machines, 0), worker(machines, 1)
        await report(handle, machines, {first.hostname, second.hostname})
        line = await event_matching(h, cid, "held", "already in remediation")
        assert "max_in_remediation 1" in line
        await event_matching(h, cid, "power-cycle of", "succeeded")
        cycled = [c for c in h.maas.calls if c.startswith(POWER_CYCLE_MACHINE)]
        assert len(cycled) == 1
        await h.stop_management(cid)


async def test_control_plane_step_that_would_break_etcd_quorum_is_held(client: Client) -> None:
    async with harness(client, machines=8) as h:
        handle, machines = await start(h, control_plane=3, workers=1)
        cid = cluster_id(handle)
        cps = [m for m in machines if m.pool == "control-plane"]
        await report(handle, machines, {cps[0].hostname, cps[1].hostname})
        line = await event_matching(h, cid, "held", "etcd quorum")
        assert "1 other healthy control-plane node(s), 2 of 3 needed" in line
        assert not any(c.startswith(POWER_CYCLE_MACHINE) for c in h.maas.calls)
        # One control-plane node down of three keeps quorum: it is repaired.
        await report(handle, machines, {cps[0].hostname})
        await event_matching(h, cid, "power-cycle of", cps[0].hostname, "succeeded")
        await h.stop_management(cid)


async def test_a_node_whose_agent_went_silent_is_remediated(client: Client) -> None:
    """The API marks a node silent (store/node_silence.py) while the others report: the
    threshold runs from when it was last heard, and the step says why."""
    async with harness(client) as h:
        handle, machines = await start(h, unhealthy_seconds=600)
        cid, quiet = cluster_id(handle), worker(machines)
        last_heard = time.time() - 600  # the pool's threshold has passed already
        nodes = [
            ObservedNode(
                hostname=m.hostname,
                system_id=m.system_id,
                ready=m is not quiet,
                kubelet_version="v1.30.4",
                silent_since=last_heard if m is quiet else None,
            )
            for m in machines
        ]
        await handle.signal(
            SIGNAL_AGENT_REPORT,
            AgentReport(control_plane_ready=True, kubernetes_version="v1.30.4", nodes=nodes),
        )
        line = await event_matching(h, cid, "remediation power-cycle of", quiet.hostname)
        assert "NodeUnhealthy: agent silent for" in line
        await h.stop_management(cid)


async def answer_commands(h: Harness, handle: WorkflowHandle[Any, Any], count: int) -> list[Any]:
    """Answer the first `count` agent commands as the runner's agent would, as they come."""
    answered: list[Any] = []
    while len(answered) < count:

        async def enqueued() -> Any:
            waiting = [c for c in h.cp.commands if c not in answered]
            assert waiting, [c.command_id for c in h.cp.commands]
            return waiting[0]

        command = await assert_eventually(enqueued, within=30)
        await handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=command.command_id, state="succeeded"),
        )
        answered.append(command)
    return answered


def endpoint_ips(h: Harness, machines: list[Machine]) -> list[str]:
    return sorted(ip for m in machines if m.pool == "control-plane" for ip in m.ip_addresses)


async def test_replacing_a_control_plane_node_removes_its_etcd_member_and_moves_the_endpoint(
    client: Client,
) -> None:
    async with harness(client, machines=8) as h:
        handle, machines = await start(h, control_plane=3, workers=1, endpoint=EndpointMode.DNS)
        cid = cluster_id(handle)
        cps = [m for m in machines if m.pool == "control-plane"]
        sick = cps[0]  # the first control plane: the one that ran kubeadm init
        await report(handle, machines, {sick.hostname})
        await event_matching(h, cid, "power-cycle of", sick.hostname, "succeeded")

        # Redeploy, then replace: each takes the node out through a surviving control plane.
        redeploy, replace = await answer_commands(h, handle, 2)
        for command in (redeploy, replace):
            assert command.kind == "remediate"
            assert command.args == {
                "node": sick.hostname,
                "runner": cps[1].hostname,
                "etcd_member": "true",
            }
        await event_matching(h, cid, "replace of", sick.hostname, "succeeded")
        state = await handle.query(QUERY_STATE, result_type=ManageState)
        assert sick.system_id not in {m.system_id for m in state.machines}
        # The dns record left the node while it was repaired, and follows the new set after.
        during = [ips for c, ips in h.maas.endpoint_calls if c == cid]
        assert any(endpoint_ips(h, cps[1:]) == ips for ips in during)
        assert h.maas.endpoints[cid][1] == endpoint_ips(h, state.machines)
        line = await event_matching(h, cid, "control-plane endpoint")
        assert "etcd member" in "".join(events(h, cid))
        assert line
        await h.stop_management(cid)


async def test_a_worker_step_needs_no_agent_command(client: Client) -> None:
    async with harness(client, machines=6) as h:
        handle, machines = await start(h)
        cid, sick = cluster_id(handle), worker(machines)
        await report(handle, machines, {sick.hostname})
        await event_matching(h, cid, "replace of", sick.hostname, "succeeded")
        assert h.cp.commands == []
        await h.stop_management(cid)


async def test_a_control_plane_step_waits_when_its_etcd_member_cannot_be_removed(
    client: Client,
) -> None:
    async with harness(client, machines=8) as h:
        handle, machines = await start(h, control_plane=3, workers=1)
        cid = cluster_id(handle)
        sick = [m for m in machines if m.pool == "control-plane"][1]
        await report(handle, machines, {sick.hostname})

        async def enqueued() -> Any:
            assert h.cp.commands
            return h.cp.commands[0]

        command = await assert_eventually(enqueued, within=30)
        await handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(
                command_id=command.command_id, state="failed", message="etcd unreachable"
            ),
        )
        line = await event_matching(h, cid, command.command_id, "failed (RemediationBlocked)")
        assert "etcd unreachable" in line
        assert f"{RELEASE_FOR_REDEPLOY} {sick.system_id}" not in h.maas.calls

        # The same step comes again after a threshold, not the next one.
        async def tried_twice() -> None:
            started = [e for e in events(h, cid) if "remediation redeploy of" in e]
            assert len([e for e in started if "started" in e]) == 2, events(h, cid)
            assert not any("power-cycle" in e and "started" in e for e in events(h, cid)[-3:])

        await assert_eventually(tried_twice, within=30)
        await h.stop_management(cid)
