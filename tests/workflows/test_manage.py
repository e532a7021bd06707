"""The management workflow: agent signals, validated updates, actions, continue-as-new."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.models import AcquireMachinesInput
from domain.lifecycle import AgentSilent
from domain.naming import (
    MANAGE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_AGENT_SILENT,
    SIGNAL_COMMAND_RESULT,
    SIGNAL_STOP,
    UPDATE_CORDON,
    UPDATE_DRAIN,
    UPDATE_PAUSE,
    UPDATE_REPAVE,
    UPDATE_RESUME,
    UPDATE_SCALE,
    UPDATE_UNCORDON,
    UPDATE_UPGRADE,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import FAST, Harness, agent_token, harness, ready_report
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


async def start_manage(
    h: Harness, *, history_limit: int = 2000, stored: Callable[[dict[str, Any]], None] | None = None
) -> WorkflowHandle[Any, Any]:
    """A running cluster of three nodes, as create would hand it over; `stored` edits the
    state as JSON first, as a run started from an older or a damaged history would see it."""
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
        history_limit=history_limit,
    )
    start: Any = ManageInput(state=state)
    if stored is not None:
        start = start.model_dump(mode="json")
        stored(start["state"])
    return await h.client.start_workflow(
        MANAGE_WORKFLOW,
        start,
        id=manage_workflow_id(cluster.cluster_id),
        task_queue=h.task_queue,
    )


async def state_of(handle: WorkflowHandle[Any, Any]) -> ManageState:
    return await handle.query(QUERY_STATE, result_type=ManageState)


async def until(handle: WorkflowHandle[Any, Any], check: Any) -> ManageState:
    async def probe() -> ManageState:
        state = await state_of(handle)
        assert check(state), state.model_dump(exclude={"cluster", "agent_token"})
        return state

    return await assert_eventually(probe, within=20)


async def update(handle: WorkflowHandle[Any, Any], name: str, arg: Any = None) -> ActionAccepted:
    args = [] if arg is None else [arg]
    return await handle.execute_update(name, args=args, result_type=ActionAccepted)


async def rejected(
    handle: WorkflowHandle[Any, Any], name: str, arg: Any = None, *, match: str
) -> None:
    """The validator refused the update with a message that says why."""
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await update(handle, name, arg)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Reason.ACTION_REJECTED
    assert match in cause.message


def cluster_id(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.split("/")[1]


async def test_silent_agent_marks_unreachable_and_recovers(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await handle.signal(SIGNAL_AGENT_SILENT, AgentSilent(last_seen_unix=0))
        await until(handle, lambda s: s.phase == Phase.UNREACHABLE)
        await h.wait_phase(cid, Phase.UNREACHABLE)
        silent = h.cp.last(cid)
        assert silent is not None and silent.reason == Reason.AGENT_SILENT

        machines = (await state_of(handle)).machines
        await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        await until(handle, lambda s: s.phase == Phase.RUNNING)

        async def recorded_running() -> None:
            last = h.cp.last(cid)
            assert last is not None and last.phase == Phase.RUNNING and last.reason is None

        await assert_eventually(recorded_running)
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_a_run_started_from_untyped_pending_actions_runs_them(client: Client) -> None:
    """Before the actions were typed, a run continued-as-new with pending dicts of strings."""

    def untyped_scale(state: dict[str, Any]) -> None:
        cid = state["cluster"]["cluster_id"]
        state["pending"] = [
            {"id": f"scale-1.{cid}", "kind": "scale", "pool": "workers", "count": "3"}
        ]
        state["action_seq"] = 1

    async with harness(client) as h:
        handle = await start_manage(h, stored=untyped_scale)
        state = await until(handle, lambda s: not s.pending and len(s.machines) == 4)
        workers = state.cluster.spec.pool("workers")
        assert workers is not None and workers.count == 3
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_an_action_that_would_not_validate_is_refused_before_it_is_stored(
    client: Client,
) -> None:
    """MAAS may name a machine what a node name may not be; repaving it by system id is
    refused with the field, instead of failing the workflow task that stores it."""

    def odd_hostname(state: dict[str, Any]) -> None:
        state["machines"][-1]["hostname"] = "node_2"

    async with harness(client) as h:
        handle = await start_manage(h, stored=odd_hostname)
        odd = (await state_of(handle)).machines[-1]
        await rejected(
            handle, UPDATE_REPAVE, RepaveRequest(node=odd.system_id), match="node: String should"
        )
        accepted = await update(handle, UPDATE_SCALE, ScaleRequest(pool="workers", count=2))
        assert accepted.action_id.startswith("scale-1.")  # the refused repave took no number
        state = await until(handle, lambda s: not s.pending)
        assert state.action_seq == 1
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_upgrade_is_validated_and_completes(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await rejected(
            handle, UPDATE_UPGRADE, UpgradeRequest(kubernetes_version="v1.29.0"), match="not newer"
        )

        accepted = await update(
            handle, UPDATE_UPGRADE, UpgradeRequest(kubernetes_version="v1.31.1")
        )
        assert accepted.kind == "upgrade"
        await rejected(
            handle,
            UPDATE_UPGRADE,
            UpgradeRequest(kubernetes_version="v1.31.2"),
            match="already queued",
        )

        async def enqueued() -> None:
            assert [c.command_id for c in h.cp.commands] == [accepted.action_id]

        await assert_eventually(enqueued)
        assert h.cp.commands[0].args == {"kubernetes_version": "v1.31.1"}
        await until(handle, lambda s: s.phase == Phase.UPGRADING)
        await handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=accepted.action_id, state="running", node="node-0"),
        )
        await handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=accepted.action_id, state="succeeded"),
        )
        state = await until(handle, lambda s: s.phase == Phase.RUNNING and not s.pending)
        assert state.kubernetes_version == "v1.31.1"

        async def recorded() -> None:
            last = h.cp.last(cid)
            assert last is not None and last.phase == Phase.RUNNING
            assert last.kubernetes_version == "v1.31.1"

        await assert_eventually(recorded)
        assert Phase.UPGRADING in h.cp.phases(cid)
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_scale_up_and_down_through_the_gateway(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await rejected(
            handle, UPDATE_SCALE, ScaleRequest(pool="control-plane", count=3), match="control plane"
        )
        await rejected(
            handle, UPDATE_SCALE, ScaleRequest(pool="gpu", count=3), match="no worker pool"
        )

        up = await update(handle, UPDATE_SCALE, ScaleRequest(pool="workers", count=4))
        state = await until(handle, lambda s: not s.pending and len(s.machines) == 5)
        assert up.action_id in h.maas.acquire_requests
        assert sorted(m.system_id for m in state.machines) == ["m0", "m1", "m2", "m3", "m4"]
        assert state.cluster.spec.pool("workers").count == 4  # type: ignore[union-attr]
        assert len(h.maas.owned(cid)) == 5

        await update(handle, UPDATE_SCALE, ScaleRequest(pool="workers", count=1))
        state = await until(handle, lambda s: not s.pending and len(s.machines) == 2)
        # The newest go first.
        assert sorted(m.system_id for m in state.machines) == ["m0", "m1"]
        assert sorted(m.system_id for m in h.maas.owned(cid)) == ["m0", "m1"]
        assert h.cp.phases(cid).count(Phase.SCALING) == 2

        async def back_to_running() -> None:
            # The query can answer before the final status activity has run.
            last = h.cp.last(cid)
            assert last is not None and last.phase == Phase.RUNNING

        await assert_eventually(back_to_running)
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_scale_waits_for_the_gateway_and_other_actions_do_not_need_it(
    client: Client,
) -> None:
    async with harness(client, gateway_up=False) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await update(handle, UPDATE_SCALE, ScaleRequest(pool="workers", count=3))
        await h.wait_reason(cid, Reason.WAITING_FOR_GATEWAY)
        waiting = h.cp.last(cid)
        assert waiting is not None and waiting.phase == Phase.SCALING
        # Silence handling goes on while scale waits for the gateway.
        await handle.signal(SIGNAL_AGENT_SILENT, AgentSilent(last_seen_unix=0))
        await h.wait_phase(cid, Phase.UNREACHABLE)
        await handle.signal(SIGNAL_AGENT_REPORT, ready_report([]))

        async with h.gateway_worker():
            state = await until(handle, lambda s: not s.pending and len(s.machines) == 4)
        assert state.phase == Phase.RUNNING
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_pause_holds_actions_and_a_failed_drain_is_reported(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await rejected(handle, UPDATE_REPAVE, RepaveRequest(node="nope"), match="no node")
        await update(handle, UPDATE_PAUSE)
        await rejected(handle, UPDATE_REPAVE, RepaveRequest(node="node-1"), match="paused")
        await rejected(handle, UPDATE_DRAIN, NodeRequest(node="node-1"), match="paused")
        await update(handle, UPDATE_RESUME)

        accepted = await update(handle, UPDATE_DRAIN, NodeRequest(node="m1"))

        async def enqueued() -> None:
            assert [c.kind for c in h.cp.commands] == ["drain"]

        await assert_eventually(enqueued)
        assert h.cp.commands[0].args == {"node": "node-1", "system_id": "m1"}
        assert h.cp.commands[0].command_id == accepted.action_id
        await handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(
                command_id=accepted.action_id,
                state="failed",
                message="drain of node-1 timed out: shop/web-1 blocked by PodDisruptionBudget",
            ),
        )
        await until(handle, lambda s: not s.pending and s.phase == Phase.RUNNING)

        async def failure_recorded() -> None:
            events = [r.event or "" for r in h.cp.records[cid]]
            assert f"{accepted.action_id} failed: drain of node-1 timed out" in " ".join(events)

        await assert_eventually(failure_recorded)
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_cordon_drain_uncordon_reach_the_agent_one_node_each(client: Client) -> None:
    async with harness(client) as h:
        handle = await start_manage(h)
        cid = cluster_id(handle)
        await rejected(handle, UPDATE_CORDON, NodeRequest(node="nope"), match="no node 'nope'")
        accepted = [
            await update(handle, name, NodeRequest(node="node-2"))
            for name in (UPDATE_CORDON, UPDATE_DRAIN, UPDATE_UNCORDON)
        ]
        assert [a.kind for a in accepted] == ["cordon", "drain", "uncordon"]
        # Each waits its turn behind the one before; the same one twice is refused.
        await rejected(
            handle, UPDATE_UNCORDON, NodeRequest(node="m2"), match="uncordon of node-2 is already"
        )
        for action in accepted:

            async def sent(action_id: str = action.action_id) -> None:
                assert action_id in [c.command_id for c in h.cp.commands]

            await assert_eventually(sent)
            await handle.signal(
                SIGNAL_COMMAND_RESULT,
                CommandResultSignal(command_id=action.action_id, state="succeeded", node="node-2"),
            )
        await until(handle, lambda s: not s.pending)
        assert [(c.kind, c.args["node"]) for c in h.cp.commands] == [
            ("cordon", "node-2"),
            ("drain", "node-2"),
            ("uncordon", "node-2"),
        ]

        async def recorded() -> None:
            events = [r.event or "" for r in h.cp.records[cid]]
            assert f"{accepted[-1].action_id} succeeded" in events
            # Cordon, drain and uncordon leave the cluster Running.
            assert Phase.REPAVING not in h.cp.phases(cid)

        await assert_eventually(recorded)
        await handle.signal(SIGNAL_STOP)
        await handle.result()


async def test_history_stays_bounded_across_continue_as_new(client: Client) -> None:
    limit = 60
    async with harness(client) as h:
        handle = await start_manage(h, history_limit=limit)
        machines = (await state_of(handle)).machines
        # Agents signal on change, not in a storm: bursts of 10 with a pause between them.
        # (An unbroken storm can keep continue-as-new from finding a quiet workflow task;
        # the benchmark measures that case.)
        for n in range(150):
            await handle.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
            if n % 10 == 9:
                await asyncio.sleep(0.2)
        accepted = await update(handle, UPDATE_SCALE, ScaleRequest(pool="workers", count=3))
        state = await until(handle, lambda s: not s.pending and len(s.machines) == 4)
        assert state.action_seq == 1 and accepted.action_id.startswith("scale-1.")

        lengths: list[int] = []
        run_id = handle.first_execution_run_id or (await handle.describe()).run_id
        while run_id:
            history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
            lengths.append(len(history.events))
            last = history.events[-1]
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert len(lengths) > 2
        # A run overshoots the limit by the signals that land while the workflow task that
        # notices it is in flight: with signals sent back to back, up to a few dozen events.
        # What matters is that no run grows with the number of signals (150 here).
        assert sum(lengths) >= 150
        assert max(lengths) < limit * 2, lengths
        await handle.signal(SIGNAL_STOP)
        await handle.result()
