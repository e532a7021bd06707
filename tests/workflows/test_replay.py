"""Recorded histories replay against today's workflow code; a changed workflow does not.

Re-record after an intended, patched change:
    METALGATE_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_replay.py -k record
(`-k record_endpoint` records only the histories made after the endpoint patch.)
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.models import (
    ACQUIRE_MACHINES,
    CLUSTER_LEFTOVERS,
    DEPLOY_MACHINE,
    ENQUEUE_AGENT_COMMAND,
    ENSURE_ENDPOINT,
    FIND_OWNED,
    PLAN_MACHINES,
    RECORD_STATUS,
    RELEASE_MACHINES,
    REMOVE_ENDPOINT,
    AcquireMachinesInput,
    FindOwnedInput,
    FindOwnedResult,
    RecordStatusInput,
)
from activities.remediation_models import QUARANTINE_MACHINE
from domain.cluster import ControlPlaneEndpoint, EndpointMode
from domain.leftovers import LeftBehind
from domain.lifecycle import AgentSilent, DeleteClusterInput, DeleteClusterResult
from domain.naming import (
    DELETE_WORKFLOW,
    MANAGE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_AGENT_SILENT,
    SIGNAL_COMMAND_RESULT,
    SIGNAL_FORCE_DELETE,
    SIGNAL_STOP,
    UPDATE_DRAIN,
    UPDATE_REPAVE,
    UPDATE_SCALE,
    UPDATE_UPGRADE,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from runtime.temporal import data_converter
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import FAST, Harness, agent_token, harness, ready_report
from tests.workflows.test_manage import start_manage
from tests.workflows.test_saga_windows import FailsWhenCancelledMaas, gateway
from workflows.contracts import (
    ActionAccepted,
    CommandResultSignal,
    ManageInput,
    ManageState,
    NodeRequest,
    RepaveRequest,
    ScaleRequest,
    UpgradeRequest,
)
from workflows.create import PATCH_CANCEL_WINS, PATCH_CANCELLED_BEFORE_ACQUIRE
from workflows.gateway_calls import PATCH_ZONE_NOTES
from workflows.registry import CONTROL_PLANE_WORKFLOWS
from workflows.repave import PATCH_MAAS_REPAVE

HISTORIES = Path(__file__).parent / "histories"
FAST_TIMEOUT = timedelta(seconds=10)
# Test-only key, committed on purpose: the recorded histories are ciphertext like real ones
# and must stay decodable by every later test session.
REPLAY_KEY = "replay-test:29ZpQSHmot5g/M2Kv5QCkPUg3aEmOxwqmwEihbmnSes="
RECORD = os.environ.get("METALGATE_RECORD_HISTORIES") == "1"


def load(name: str) -> WorkflowHistory:
    raw = json.loads((HISTORIES / name).read_text())
    return WorkflowHistory.from_json(raw["workflow_id"], raw["history"])


def without_stack_traces(node: Any) -> Any:
    """A recorded failure's stack trace names files of the recording machine; replay never
    reads it."""
    if isinstance(node, dict):
        return {k: "" if k == "stackTrace" else without_stack_traces(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_stack_traces(v) for v in node]
    return node


async def save(name: str, handle: WorkflowHandle[Any, Any]) -> None:
    history = await handle.fetch_history()
    document = {
        "workflow_id": handle.id,
        "history": without_stack_traces(json.loads(history.to_json())),
    }
    (HISTORIES / name).write_text(json.dumps(document, indent=1) + "\n")


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_histories(env: WorkflowEnvironment) -> None:
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        await save("create_running.json", create)

        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        await exercise_management(h, manage)
        await save("manage.json", manage)

        delete = await client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=cluster, timeouts=FAST),
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
            result_type=DeleteClusterResult,
        )
        await delete.result()
        await save("delete.json", delete)

        failed = h.cluster(workers=1)
        timeouts = FAST.model_copy(update={"agent_ready": 1.0})
        handle = await h.start_create(failed, timeouts)
        assert (await handle.result()).phase == Phase.FAILED
        await save("create_agent_timeout.json", handle)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_endpoint_histories(env: WorkflowEnvironment) -> None:
    """Histories with the control-plane endpoint (dns mode: it follows each control-plane
    deploy); the older histories above were recorded before it and stay as they are."""
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client) as h:
        cluster = h.cluster(workers=1, control_plane=3)
        spec = cluster.spec.model_copy(
            update={"control_plane_endpoint": ControlPlaneEndpoint(mode=EndpointMode.DNS)}
        )
        cluster = cluster.model_copy(update={"spec": spec})
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        await save("create_running_endpoint.json", create)
        await h.stop_management(cluster.cluster_id)

        delete = await client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=cluster, timeouts=FAST),
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
            result_type=DeleteClusterResult,
        )
        await delete.result()
        await save("delete_endpoint.json", delete)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_pending_histories(env: WorkflowEnvironment) -> None:
    """Management continued-as-new while actions were queued: the second run starts from
    stored pending actions. Recorded when they were dicts of strings (`count="3"`), kept as
    they are so the typed state is shown to read that shape."""
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        acquired = await h.maas.acquire_machines(
            AcquireMachinesInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                request_id="create",
                pools=cluster.spec.pools,
            )
        )
        state = ManageState(
            cluster=cluster,
            agent_token=agent_token(cluster.cluster_id),
            machines=acquired.machines,
            kubernetes_version="v1.30.4",
            timeouts=FAST,
            history_limit=50,
        )
        manage = await client.start_workflow(
            MANAGE_WORKFLOW,
            ManageInput(state=state),
            id=manage_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
        )
        first_run = manage.first_execution_run_id
        upgrade = await manage.execute_update(
            UPDATE_UPGRADE, UpgradeRequest(kubernetes_version="v1.31.0"), result_type=ActionAccepted
        )
        await manage.execute_update(
            UPDATE_SCALE, ScaleRequest(pool="workers", count=3), result_type=ActionAccepted
        )
        repave = await manage.execute_update(
            UPDATE_REPAVE,
            RepaveRequest(node=acquired.machines[-1].hostname),
            result_type=ActionAccepted,
        )
        # Past the history limit while the upgrade runs: management continues as new once it
        # ends, with the scale and the repave still queued.
        for _ in range(60):
            await manage.signal(SIGNAL_AGENT_REPORT, ready_report(acquired.machines))
        await manage.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=upgrade.action_id, state="succeeded"),
        )

        async def repave_enqueued() -> None:
            assert repave.action_id in [c.command_id for c in h.cp.commands]

        await assert_eventually(repave_enqueued, within=30)
        await manage.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=repave.action_id, state="succeeded"),
        )

        async def settled() -> None:
            state = await manage.query(QUERY_STATE, result_type=ManageState)
            assert not state.pending and len(state.machines) == 4

        await assert_eventually(settled, within=30)
        await manage.signal(SIGNAL_STOP)
        await manage.result()
        # Every run of the chain: each later one starts from the actions the one before queued.
        run_id, runs = first_run, 0
        while run_id:
            runs += 1
            run = client.get_workflow_handle(manage.id, run_id=run_id)
            await save(f"manage_untyped_pending_run{runs}.json", run)
            last = (await run.fetch_history()).events[-1]
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert runs > 1


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_force_delete_history(env: WorkflowEnvironment) -> None:
    """A delete waiting for a stopped gateway, then forced (after the force-delete patch)."""
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client, gateway_up=False) as h:
        async with h.gateway_worker():
            cluster = h.cluster(workers=1)
            create = await h.start_create(cluster)
            await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
            machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
            await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
            assert (await create.result()).phase == Phase.RUNNING
            await h.stop_management(cluster.cluster_id)
        h.cp.left[cluster.cluster_id] = LeftBehind(machines=machines)
        delete = await client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=cluster, timeouts=FAST),
            id=delete_workflow_id(cluster.cluster_id),
            task_queue=h.task_queue,
            result_type=DeleteClusterResult,
        )
        await h.wait_reason(cluster.cluster_id, Reason.WAITING_FOR_GATEWAY)
        await delete.signal(SIGNAL_FORCE_DELETE)
        assert (await delete.result()).left_behind is not None
        await save("delete_forced.json", delete)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_closed_phase_histories(env: WorkflowEnvironment) -> None:
    """Histories made after the closed-phase patch: a create handing its cluster on, and a
    management run that continues as new; the older ones stay as they are."""
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client) as h:
        cluster = h.cluster(workers=1)
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        await save("create_running_closed_phase.json", create)

        manage = await start_manage(h, history_limit=50)
        first_run = manage.first_execution_run_id or (await manage.describe()).run_id
        for n in range(60):
            await manage.signal(SIGNAL_AGENT_REPORT, ready_report([]))
            if n % 10 == 9:
                await asyncio.sleep(0.2)
        first = client.get_workflow_handle(manage.id, run_id=first_run)

        async def continued() -> None:
            status = (await first.describe()).status
            assert status == WorkflowExecutionStatus.CONTINUED_AS_NEW

        await assert_eventually(continued, within=60.0)
        await save("manage_continued_closed_phase.json", first)
        await manage.signal(SIGNAL_STOP)
        await manage.result()
        await save("manage_stopped_closed_phase.json", manage)


async def exercise_management(h: Harness, manage: WorkflowHandle[Any, Any]) -> None:
    await manage.signal(SIGNAL_AGENT_SILENT, AgentSilent(last_seen_unix=0))
    await h.wait_phase(manage.id.split("/")[1], Phase.UNREACHABLE)
    await manage.signal(SIGNAL_AGENT_REPORT, ready_report([]))
    upgrade = await manage.execute_update(
        UPDATE_UPGRADE, UpgradeRequest(kubernetes_version="v1.31.0"), result_type=ActionAccepted
    )

    async def enqueued() -> None:
        assert h.cp.commands

    await assert_eventually(enqueued)
    await manage.signal(
        SIGNAL_COMMAND_RESULT, CommandResultSignal(command_id=upgrade.action_id, state="succeeded")
    )
    await manage.execute_update(
        UPDATE_SCALE, ScaleRequest(pool="workers", count=3), result_type=ActionAccepted
    )

    async def settled() -> None:
        state = await manage.query(QUERY_STATE, result_type=ManageState)
        assert not state.pending and len(state.machines) == 4

    await assert_eventually(settled)
    await manage.signal(SIGNAL_STOP)
    await manage.result()


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_remediation_histories(env: WorkflowEnvironment) -> None:
    """Management after the remediation patch: a NotReady worker is power-cycled, then Ready."""
    from tests.workflows.test_remediation import event_matching, report, start, worker

    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client) as h:
        manage, machines = await start(h)
        cluster_id = manage.id.split("/")[1]
        sick = worker(machines)
        await report(manage, machines, {sick.hostname})
        await event_matching(h, cluster_id, "power-cycle of", sick.hostname, "succeeded")
        await report(manage, machines, set())
        await event_matching(h, cluster_id, f"remediation of {sick.hostname} done")
        await h.stop_management(cluster_id)
        await save("manage_remediation.json", manage)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_cancel_histories(env: WorkflowEnvironment) -> None:
    """Creates after the cancel patches: a cancel hidden behind a MAAS failure, and a create
    fenced by a delete requested before it began."""
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client, gateway_up=False) as h:
        maas = FailsWhenCancelledMaas()
        async with gateway(h, maas):
            cluster = h.cluster(workers=1)
            create = await h.start_create(cluster)
            await asyncio.wait_for(maas.waiting.wait(), timeout=20)
            await create.cancel()
            with pytest.raises(WorkflowFailureError):
                await create.result()
            await save("create_cancel_hidden.json", create)

            fenced = h.cluster(workers=1)
            h.cp.delete_requested.add(fenced.cluster_id)
            handle = await h.start_create(fenced)
            assert (await handle.result()).reason == Reason.CANCELLED
            await save("create_fenced.json", handle)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_zone_histories(env: WorkflowEnvironment) -> None:
    """A create over three zones, one without machines: the acquire's note becomes an event
    (after the zone-notes patch)."""
    from tests.workflows.test_create import ZONED, zoned

    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client, zones=ZONED) as h:
        cluster = zoned(h.cluster(workers=1, control_plane=3))
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        await save("create_zone_notes.json", create)
        await h.stop_management(cluster.cluster_id)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_control_plane_remediation_history(env: WorkflowEnvironment) -> None:
    """After the control-plane take-out patch: the first control plane of three (dns endpoint)
    stays NotReady, is power-cycled, redeployed and replaced, its etcd member removed first."""
    from tests.workflows.test_remediation import answer_commands, event_matching, report, start

    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client, machines=8) as h:
        manage, machines = await start(h, control_plane=3, workers=1, endpoint=EndpointMode.DNS)
        cluster_id = manage.id.split("/")[1]
        sick = machines[0]
        await report(manage, machines, {sick.hostname})
        await answer_commands(h, manage, 2)
        await event_matching(h, cluster_id, "replace of", sick.hostname, "succeeded")
        await h.stop_management(cluster_id)
        await save("manage_remediation_control_plane.json", manage)


@pytest.mark.skipif(not RECORD, reason="set METALGATE_RECORD_HISTORIES=1 to re-record")
async def test_record_repave_histories(env: WorkflowEnvironment) -> None:
    """Management after the maas-repave patch: a worker repaved (auto, a free machine: expand
    first), then another drained through the agent."""
    from tests.workflows.test_repave import ERASING, repave, running_cluster

    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter([REPLAY_KEY]),
    )
    async with harness(client, machines=4, release_seconds=ERASING) as h:
        async with running_cluster(h, control_plane=1, workers=2) as agent:
            line = await repave(agent, node="node-1")
            assert "succeeded: repaved 1 node(s)" in line
            drain = await agent.handle.execute_update(
                UPDATE_DRAIN, NodeRequest(node="node-2"), result_type=ActionAccepted
            )

            async def drained() -> None:
                events = [r.event or "" for r in h.cp.records[agent.cluster_id]]
                assert f"{drain.action_id} succeeded" in events

            await assert_eventually(drained)
        await save("manage_repave.json", agent.handle)


async def test_recorded_histories_replay() -> None:
    names = sorted(p.name for p in HISTORIES.glob("*.json"))
    assert {
        "create_running.json",
        "manage.json",
        "delete.json",
        "create_running_endpoint.json",
        "delete_endpoint.json",
        "manage_untyped_pending_run2.json",
        "delete_forced.json",
        "create_running_closed_phase.json",
        "manage_continued_closed_phase.json",
        "manage_stopped_closed_phase.json",
        "manage_remediation.json",
        "create_cancel_hidden.json",
        "create_fenced.json",
        "create_zone_notes.json",
        "manage_remediation_control_plane.json",
        "manage_repave.json",
    } <= set(names)
    replayer = Replayer(
        workflows=CONTROL_PLANE_WORKFLOWS, data_converter=data_converter([REPLAY_KEY])
    )
    for name in names:
        await replayer.replay_workflow(load(name))


@workflow.defn(name=DELETE_WORKFLOW, sandboxed=False)
class DeleteWithoutStopping:
    """ClusterDelete as someone might "simplify" it: no longer stops the other workflows."""

    @workflow.run
    async def run(self, input: DeleteClusterInput) -> DeleteClusterResult:
        await workflow.execute_activity(
            RECORD_STATUS,
            RecordStatusInput(cluster_id=input.cluster.cluster_id, phase=Phase.DELETING),
            start_to_close_timeout=FAST_TIMEOUT,
        )
        await workflow.execute_activity(
            FIND_OWNED,
            FindOwnedInput(account=input.cluster.account, cluster_id=input.cluster.cluster_id),
            result_type=FindOwnedResult,
            start_to_close_timeout=FAST_TIMEOUT,
        )
        return DeleteClusterResult(released=[])


async def test_an_unpatched_change_fails_replay() -> None:
    replayer = Replayer(
        workflows=[DeleteWithoutStopping], data_converter=data_converter([REPLAY_KEY])
    )
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(load("delete.json"))


async def start_state(history: WorkflowHistory) -> dict[str, Any]:
    started = history.events[0].workflow_execution_started_event_attributes
    payload = await data_converter([REPLAY_KEY]).decode(started.input.payloads)
    state: dict[str, Any] = payload[0]["state"]
    return state


async def test_the_untyped_pending_history_starts_from_dicts_of_strings() -> None:
    """Its replay (above) shows the typed state reads what was stored before it."""
    pending = (await start_state(load("manage_untyped_pending_run2.json")))["pending"]
    assert [a["kind"] for a in pending] == ["scale", "repave"]
    assert pending[0]["count"] == "3"


def scheduled_activities(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


def test_force_delete_history_exercises_the_forced_path() -> None:
    forced = scheduled_activities(load("delete_forced.json"))
    assert CLUSTER_LEFTOVERS in forced and RELEASE_MACHINES not in forced


def test_endpoint_histories_exercise_the_endpoint_calls() -> None:
    """The newer histories hold what the patch added, so their replay checks it."""
    create = scheduled_activities(load("create_running_endpoint.json"))
    assert create.count(ENSURE_ENDPOINT) == 1 + 3 + 1  # before, per control plane, after
    assert create.index(ENSURE_ENDPOINT) < create.index(DEPLOY_MACHINE)
    assert REMOVE_ENDPOINT in scheduled_activities(load("delete_endpoint.json"))
    assert ENSURE_ENDPOINT not in scheduled_activities(load("create_running.json"))


def test_the_repave_history_replaces_a_machine_through_maas() -> None:
    """It holds what the maas-repave patch added, so its replay checks it."""
    history = load("manage_repave.json")
    activities = scheduled_activities(history)
    for name in (PLAN_MACHINES, ACQUIRE_MACHINES, DEPLOY_MACHINE, RELEASE_MACHINES):
        assert name in activities, name
    assert activities.index(ACQUIRE_MACHINES) < activities.index(RELEASE_MACHINES)
    patches = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert PATCH_MAAS_REPAVE in [p["id"] for p in patches]


def test_closed_phase_histories_hold_the_patch() -> None:
    """Each closes with the patch's upsert (what the cluster became, or no phase), so their
    replay checks it."""
    expected = {
        "create_running_closed_phase.json": None,
        "manage_continued_closed_phase.json": None,
        "manage_stopped_closed_phase.json": Phase.DELETED.value,
    }
    for name, phase in expected.items():
        upserts = [
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            for e in load(name).events
            if e.HasField("upsert_workflow_search_attributes_event_attributes")
        ]
        last = upserts[-1]["ClusterPhase"]
        assert json.loads(last.data or b"null") == phase, name


def test_cancel_histories_hold_their_patches() -> None:
    for name, patch in {
        "create_cancel_hidden.json": PATCH_CANCEL_WINS,
        "create_fenced.json": PATCH_CANCELLED_BEFORE_ACQUIRE,
    }.items():
        patches = [
            json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
            for e in load(name).events
            if e.HasField("marker_recorded_event_attributes")
        ]
        assert patch in [p["id"] for p in patches], name


def test_the_zone_history_writes_the_acquires_note() -> None:
    """Its replay (above) checks the event the patch added after the acquire."""
    history = load("create_zone_notes.json")
    patches = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert PATCH_ZONE_NOTES in [p["id"] for p in patches]
    scheduled = scheduled_activities(history)
    after_acquire = scheduled[scheduled.index(ACQUIRE_MACHINES) + 1]
    assert after_acquire == RECORD_STATUS


def test_control_plane_remediation_history_exercises_the_take_out() -> None:
    scheduled = scheduled_activities(load("manage_remediation_control_plane.json"))
    assert scheduled.count(ENQUEUE_AGENT_COMMAND) == 2  # before the redeploy and the replace
    assert ENSURE_ENDPOINT in scheduled and QUARANTINE_MACHINE not in scheduled[:3]


def test_recorded_histories_name_no_file_of_the_recording_machine() -> None:
    for path in HISTORIES.glob("*.json"):
        assert without_stack_traces(json.loads(path.read_text())) == json.loads(path.read_text()), (
            f"{path.name} keeps a stack trace; record it again"
        )
