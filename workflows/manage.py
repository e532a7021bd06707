"""The long-lived management workflow of a running cluster.

All state lives in ManageState, carried whole across continue-as-new. Signals and updates
only change state (they never await); the main loop records phase changes and runs queued
actions one at a time, so no handler is ever left unfinished at continue-as-new.
Silence is detected outside, by the scheduled fleet sweep, which signals `agent_silent`.
Only scale, repave and remediation touch the gateway; everything else works with it down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar, assert_never

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        ENQUEUE_AGENT_COMMAND,
        EnqueueAgentCommandInput,
    )
    from domain.agent_wire import NODE_ACTIONS, ActionKind, CommandState
    from domain.cluster import MAX_NODES_PER_CLUSTER, MAX_NODES_PER_POOL, NodePool, version_key
    from domain.lifecycle import AgentSilent
    from domain.maas import Machine
    from domain.management import (
        NodeAction,
        PendingAction,
        RemediateAction,
        RepaveAction,
        ScaleAction,
        UpgradeAction,
    )
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
    )
    from domain.phases import Phase, Reason
    from workflows.contracts import (
        ActionAccepted,
        AgentReport,
        CommandResultSignal,
        ManageInput,
        ManageState,
        NodeRequest,
        RepaveRequest,
        ScaleRequest,
        UpgradeRequest,
    )
    from workflows.deploy import Deployer
    from workflows.endpoint import Endpoint
    from workflows.gateway_calls import GatewayCalls, failure_reason
    from workflows.remediation import PATCH_REMEDIATION, Remediation
    from workflows.repave import PATCH_MAAS_REPAVE, Repave
    from workflows.status import (
        StatusRecorder,
        annotate,
        close_search_attributes,
        control_plane_call,
        run_to_completion,
    )
    from workflows.surplus import PATCH_RELEASE_SURPLUS, release_surplus

ACTION_PHASES = {
    ActionKind.UPGRADE: Phase.UPGRADING,
    ActionKind.SCALE: Phase.SCALING,
    ActionKind.REPAVE: Phase.REPAVING,
    ActionKind.REMEDIATE: Phase.REMEDIATING,
    # Cordon, drain and uncordon leave the cluster Running; their events say what runs.
    **{kind: Phase.RUNNING for kind in NODE_ACTIONS},
}
PATCH_RELEASE_FAILED_SCALE_UP = "release-failed-scale-up"
A = TypeVar("A", UpgradeAction, ScaleAction, RepaveAction, RemediateAction, NodeAction)
R = TypeVar("R", bound=BaseModel)


def _reject(message: str) -> ApplicationError:
    return ApplicationError(message, type=Reason.ACTION_REJECTED.value, non_retryable=True)


@workflow.defn(name=MANAGE_WORKFLOW)
class ClusterManagement:
    @workflow.init
    def __init__(self, input: ManageInput) -> None:
        self._s = input.state
        cluster = self._s.cluster
        # A run starts with its phase already recorded: by create, or before continue-as-new.
        self._status = StatusRecorder(cluster.cluster_id, self._s.phase)
        self._calls = GatewayCalls(cluster.gateway, self._s.timeouts, self._status)
        self._stop = False
        self._current: PendingAction | None = None
        self._results: dict[str, CommandResultSignal] = {}
        # Agent commands the running action waits on (a repave sends one per node).
        self._awaiting: set[str] = set()
        self._transition_event: str | None = None
        self._machines_changed = False
        self._remediation = Remediation(self._s, self._calls, self._status)
        endpoint = Endpoint(cluster, self._calls)
        endpoint.host = self._s.control_plane_host
        self._repave = Repave(
            self._s,
            self._calls,
            self._status,
            add_machines=self._add_machines,
            run_command=self._command,
            endpoint=endpoint,
        )
        # Set by reports and silence: the remediation ladder looks at health again.
        self._health_changed = True

    # --- signals: state changes only -----------------------------------------------------

    @workflow.signal(name=SIGNAL_AGENT_REPORT)
    def agent_report(self, report: AgentReport) -> None:
        self._s.last_report_unix = workflow.time()
        # Keep each node's latest status: a report need not list every node.
        nodes = {n.hostname: n for n in [*self._s.nodes, *report.nodes]}
        self._s.nodes = sorted(nodes.values(), key=lambda n: n.hostname)
        self._health_changed = True
        if self._s.phase == Phase.UNREACHABLE:
            self._s.phase = self._working_phase()
            self._transition_event = "the agent reports again"

    @workflow.signal(name=SIGNAL_AGENT_SILENT)
    def agent_silent(self, silent: AgentSilent) -> None:
        self._health_changed = True
        if self._s.phase != Phase.UNREACHABLE:
            self._s.phase = Phase.UNREACHABLE
            self._transition_event = (
                f"the agent is silent: nothing heard for over {self._s.silence_seconds:.0f}s"
            )

    @workflow.signal(name=SIGNAL_COMMAND_RESULT)
    def command_result(self, result: CommandResultSignal) -> None:
        current = self._current is not None and self._current.id == result.command_id
        if current or result.command_id in self._awaiting:
            self._results[result.command_id] = result

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self) -> None:
        self._stop = True

    @workflow.query(name=QUERY_STATE)
    def state(self) -> ManageState:
        return self._s

    # --- updates: validate, queue, answer at once -----------------------------------------

    @workflow.update(name=UPDATE_UPGRADE)
    def upgrade(self, request: UpgradeRequest) -> ActionAccepted:
        return self._queue(self._upgrade_action(request))

    @upgrade.validator
    def _validate_upgrade(self, request: UpgradeRequest) -> None:
        self._refuse_when_paused()
        try:
            wanted = version_key(request.kubernetes_version)
        except ValueError as err:
            raise _reject(str(err)) from None
        if wanted <= version_key(self._s.kubernetes_version):
            raise _reject(
                f"{request.kubernetes_version} is not newer than the running "
                f"{self._s.kubernetes_version}; downgrades are not supported"
            )
        if self._queued(UpgradeAction):
            raise _reject("an upgrade is already queued or running; wait for it to finish")
        self._checked(self._upgrade_action, request)

    def _upgrade_action(self, request: UpgradeRequest) -> UpgradeAction:
        return UpgradeAction(
            id=self._next_id(ActionKind.UPGRADE), kubernetes_version=request.kubernetes_version
        )

    @workflow.update(name=UPDATE_SCALE)
    def scale(self, request: ScaleRequest) -> ActionAccepted:
        return self._queue(self._scale_action(request))

    @scale.validator
    def _validate_scale(self, request: ScaleRequest) -> None:
        self._refuse_when_paused()
        spec = self._s.cluster.spec
        if request.pool == spec.control_plane.name:
            raise _reject("the control plane is not scaled this way; its size is fixed at create")
        pool = spec.pool(request.pool)
        if pool is None:
            names = [p.name for p in spec.worker_pools]
            raise _reject(f"no worker pool {request.pool!r}; pools are {names}")
        if request.count > MAX_NODES_PER_POOL:
            raise _reject(f"a pool has at most {MAX_NODES_PER_POOL} nodes")
        total = spec.node_count - pool.count + request.count
        if total > MAX_NODES_PER_CLUSTER:
            raise _reject(
                f"a cluster has at most {MAX_NODES_PER_CLUSTER} nodes; this makes {total}"
            )
        if any(a.pool == request.pool for a in self._queued(ScaleAction)):
            raise _reject(f"pool {request.pool} is already being scaled; wait for it to finish")
        self._checked(self._scale_action, request)

    def _scale_action(self, request: ScaleRequest) -> ScaleAction:
        return ScaleAction(
            id=self._next_id(ActionKind.SCALE), pool=request.pool, count=request.count
        )

    @workflow.update(name=UPDATE_REPAVE)
    def repave(self, request: RepaveRequest) -> ActionAccepted:
        return self._queue(self._repave_action(request))

    @repave.validator
    def _validate_repave(self, request: RepaveRequest) -> None:
        self._refuse_when_paused()
        queued = self._queued(RepaveAction)
        if request.pool is not None:
            spec = self._s.cluster.spec
            if spec.pool(request.pool) is None:
                names = [p.name for p in spec.pools]
                raise _reject(f"no pool {request.pool!r}; pools are {names}")
            if not any(m.pool == request.pool for m in self._s.machines):
                raise _reject(f"pool {request.pool} has no node to repave")
            if any(self._pool_of(a) == request.pool for a in queued):
                raise _reject(f"pool {request.pool} is already queued for repave")
        else:
            machine = self._node(request.node)
            if any(a.system_id == machine.system_id or a.pool == machine.pool for a in queued):
                raise _reject(f"{machine.hostname} is already queued for repave")
        self._checked(self._repave_action, request)

    def _repave_action(self, request: RepaveRequest) -> RepaveAction:
        action_id = self._next_id(ActionKind.REPAVE)
        if request.pool is not None:
            return RepaveAction(id=action_id, pool=request.pool)
        machine = self._machine(request.node or "")
        assert machine is not None  # the validator checked
        return RepaveAction(id=action_id, node=machine.hostname, system_id=machine.system_id)

    def _pool_of(self, action: RepaveAction) -> str | None:
        if action.pool is not None:
            return action.pool
        machine = self._machine(action.system_id)
        return machine.pool if machine else None

    # Cordon, drain and uncordon: one node each, run by the agent.

    @workflow.update(name=UPDATE_CORDON)
    def cordon(self, request: NodeRequest) -> ActionAccepted:
        return self._queue(self._node_action(ActionKind.CORDON, request))

    @cordon.validator
    def _validate_cordon(self, request: NodeRequest) -> None:
        self._validate_node_action(ActionKind.CORDON, request)

    @workflow.update(name=UPDATE_DRAIN)
    def drain(self, request: NodeRequest) -> ActionAccepted:
        return self._queue(self._node_action(ActionKind.DRAIN, request))

    @drain.validator
    def _validate_drain(self, request: NodeRequest) -> None:
        self._validate_node_action(ActionKind.DRAIN, request)

    @workflow.update(name=UPDATE_UNCORDON)
    def uncordon(self, request: NodeRequest) -> ActionAccepted:
        return self._queue(self._node_action(ActionKind.UNCORDON, request))

    @uncordon.validator
    def _validate_uncordon(self, request: NodeRequest) -> None:
        self._validate_node_action(ActionKind.UNCORDON, request)

    def _validate_node_action(self, kind: ActionKind, request: NodeRequest) -> None:
        self._refuse_when_paused()
        machine = self._node(request.node)
        if any(
            a.kind == kind and a.system_id == machine.system_id for a in self._queued(NodeAction)
        ):
            raise _reject(f"{kind} of {machine.hostname} is already queued")
        self._checked(lambda r: self._node_action(kind, r), request)

    def _node_action(self, kind: ActionKind, request: NodeRequest) -> NodeAction:
        machine = self._machine(request.node)
        assert machine is not None  # the validator checked
        return NodeAction(
            id=self._next_id(kind), kind=kind, node=machine.hostname, system_id=machine.system_id
        )

    @workflow.update(name=UPDATE_PAUSE)
    def pause(self) -> ActionAccepted:
        self._s.paused = True
        return ActionAccepted(
            action_id="pause",
            kind="pause",
            message="management paused: queued actions wait; one already running finishes",
        )

    @workflow.update(name=UPDATE_RESUME)
    def resume(self) -> ActionAccepted:
        self._s.paused = False
        return ActionAccepted(action_id="resume", kind="resume", message="management resumed")

    def _refuse_when_paused(self) -> None:
        if self._s.paused:
            raise _reject("management of this cluster is paused; resume it first")

    def _queued(self, kind: type[A]) -> list[A]:
        return [a for a in self._s.pending if isinstance(a, kind)]

    def _checked(self, build: Callable[[R], PendingAction], request: R) -> None:
        """Refuse, before anything is stored, a request whose action would not validate."""
        try:
            build(request)
        except ValidationError as err:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise _reject(f"refused before it is queued: {fields}") from None

    def _machine(self, node: str) -> Machine | None:
        return next((m for m in self._s.machines if node in (m.hostname, m.system_id)), None)

    def _node(self, node: str | None) -> Machine:
        """The machine a request names, or the refusal that says which names there are."""
        machine = self._machine(node or "")
        if machine is None:
            raise _reject(f"no node {node!r} in this cluster (hostname or system id)")
        return machine

    def _next_id(self, kind: ActionKind) -> str:
        # Agent command ids are global keys in the store: scope them to the cluster.
        return f"{kind}-{self._s.action_seq + 1}.{self._s.cluster.cluster_id}"

    def _queue(self, action: PendingAction) -> ActionAccepted:
        self._s.action_seq += 1
        self._s.pending.append(action)
        return ActionAccepted(
            action_id=action.id,
            kind=action.kind,
            message=f"{action.kind} queued: {action.detail()}",
        )

    # --- main loop ----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ManageInput) -> None:
        annotate(self._s.cluster, self._s.phase)
        while True:
            await self._wait_for_work()
            if self._stop:
                break
            if self._phase_stale():
                await self._record_phase()
            elif self._history_too_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.logger.info(
                    "cluster %s: continuing as new after %d events",
                    self._s.cluster.cluster_id,
                    workflow.info().get_current_history_length(),
                )
                handed_on = close_search_attributes(None)
                workflow.continue_as_new(
                    ManageInput(state=self._s),
                    search_attributes=(
                        self._status.search_attributes(self._s.cluster) if handed_on else None
                    ),
                )
            elif (action := self._next_action()) is not None:
                await self._run_action(action)
        # Only delete stops management: the cluster is going away for good.
        close_search_attributes(Phase.DELETED)
        workflow.logger.info("cluster %s: management stopped", self._s.cluster.cluster_id)

    def _has_work(self) -> bool:
        return (
            self._stop
            or self._phase_stale()
            or self._history_too_long()
            or self._next_action() is not None
        )

    async def _wait_for_work(self) -> None:
        """Wait for work; with remediation, also for a health change or a step falling due."""
        if not workflow.patched(PATCH_REMEDIATION):
            await workflow.wait_condition(self._has_work)
            return
        if not self._s.paused:
            self._health_changed = False
            await self._remediation.review(self._next_id, self._queue)
        wake_at = None if self._s.paused else self._remediation.wake_at()
        timeout = None if wake_at is None else max(1.0, wake_at - workflow.time())
        try:
            await workflow.wait_condition(
                lambda: self._has_work() or (self._health_changed and not self._s.paused),
                timeout=None if timeout is None else timedelta(seconds=timeout),
            )
        except TimeoutError:
            pass  # a remediation step is due: the next review queues it

    def _next_action(self) -> PendingAction | None:
        return self._s.pending[0] if self._s.pending and not self._s.paused else None

    def _phase_stale(self) -> bool:
        return self._s.phase != self._status.phase

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._s.history_limit
        )

    def _working_phase(self) -> Phase:
        return ACTION_PHASES[self._current.kind] if self._current else Phase.RUNNING

    async def _record_phase(self, event: str | None = None) -> None:
        phase = self._s.phase
        event = event or self._transition_event
        self._transition_event = None
        machines = list(self._s.machines) if self._machines_changed else None
        self._machines_changed = False
        await self._status.set(
            phase,
            reason=Reason.AGENT_SILENT if phase == Phase.UNREACHABLE else None,
            message="the cluster agent stopped reporting" if phase == Phase.UNREACHABLE else "",
            machines=machines,
            kubernetes_version=self._s.kubernetes_version,
            event=event,
        )

    async def _run_action(self, action: PendingAction) -> None:
        """Run one action while phase changes keep being recorded; a stop cancels it."""
        self._current = action
        if self._s.phase != Phase.UNREACHABLE:
            self._s.phase = self._working_phase()
        await self._record_phase(f"{action.id} started: {action.detail()}")
        task = asyncio.ensure_future(self._execute(action))
        while not task.done():
            await workflow.wait_condition(lambda: task.done() or self._stop or self._phase_stale())
            if self._stop and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif self._phase_stale():
                await self._record_phase()
        if task.cancelled() or task.exception() is not None:
            outcome = f"{action.id} stopped: management is stopping"
        else:
            outcome = task.result()
        self._s.pending.pop(0)
        self._current = None
        self._results.clear()
        self._awaiting.clear()
        if self._s.phase != Phase.UNREACHABLE:
            self._s.phase = Phase.RUNNING
        await self._record_phase(outcome)

    async def _execute(self, action: PendingAction) -> str:
        """Run an action; returns the event line that says how it ended."""
        try:
            match action:
                case UpgradeAction():
                    return await self._upgrade(action)
                case ScaleAction():
                    return await self._scale(action)
                case RepaveAction():
                    if not workflow.patched(PATCH_MAAS_REPAVE):
                        return await self._agent_command(
                            action, {"node": action.node or "", "system_id": action.system_id}
                        )
                    try:
                        return await self._repave.run(action)
                    finally:
                        self._machines_changed = True
                case NodeAction():
                    return await self._node_command(action)
                case RemediateAction():
                    outcome = await self._remediation.run(
                        action, self._add_machines, self._remediation_command
                    )
                    self._machines_changed = True
                    return outcome
                case _:
                    assert_never(action)
        except FailureError as err:
            if is_cancelled_exception(err):
                raise
            reason, message = failure_reason(err)
            workflow.logger.warning("%s failed: %s: %s", action.id, reason, message)
            return f"{action.id} failed ({reason}): {message}"

    async def _agent_command(self, action: PendingAction, args: dict[str, str]) -> str:
        """Queue the action as a command for the agent and wait for its final result."""
        result = await self._command(action.id, action.kind, args)
        if result is None:
            timeout = self._s.timeouts.command
            return f"{action.id} failed: no result from the agent within {timeout:.0f}s"
        detail = f": {result.message}" if result.message else ""
        return f"{action.id} {result.state}{detail}"

    async def _command(
        self, command_id: str, kind: ActionKind, args: dict[str, str]
    ) -> CommandResultSignal | None:
        """Queue one agent command and wait for its final result; None when none came."""
        self._awaiting.add(command_id)
        await control_plane_call(
            ENQUEUE_AGENT_COMMAND,
            EnqueueAgentCommandInput(
                cluster_id=self._s.cluster.cluster_id,
                command_id=command_id,
                kind=kind,
                args=args,
            ),
        )
        try:
            await workflow.wait_condition(
                lambda: command_id in self._results and self._results[command_id].state.done,
                timeout=timedelta(seconds=self._s.timeouts.command),
            )
        except TimeoutError:
            return None
        return self._results[command_id]

    async def _node_command(self, action: NodeAction) -> str:
        machine = self._machine(action.system_id)
        if machine is None:
            return f"{action.id} skipped: {action.node} is no longer one of the cluster's nodes"
        return await self._agent_command(
            action, {"node": machine.hostname, "system_id": machine.system_id}
        )

    async def _remediation_command(
        self, action: RemediateAction, args: dict[str, str]
    ) -> CommandResultSignal | None:
        """A remediation step's agent command: its final result, None when none came."""
        return await self._command(action.id, action.kind, args)

    async def _upgrade(self, action: UpgradeAction) -> str:
        version = action.kubernetes_version
        outcome = await self._agent_command(action, {"kubernetes_version": version})
        result = self._results.get(action.id)
        if result is not None and result.state == CommandState.SUCCEEDED:
            self._s.kubernetes_version = version
            self._s.cluster.spec.kubernetes_version = version
        return outcome

    async def _scale(self, action: ScaleAction) -> str:
        pool_name, count = action.pool, action.count
        spec = self._s.cluster.spec
        pool = spec.pool(pool_name)
        assert pool is not None  # the validator checked, and pools never disappear
        current = [m for m in self._s.machines if m.pool == pool_name]
        if count > len(current):
            added = await self._add_machines(
                action.id, pool.model_copy(update={"count": count - len(current)}), [], []
            )
            self._s.machines.extend(added)
            change = "added " + ", ".join(m.hostname for m in added)
        elif count < len(current):
            # The newest machines go first: the oldest ones have run longest without trouble.
            leaving = current[count:]
            await self._release([m.system_id for m in leaving], f"pool {pool_name} scaled down")
            gone = {m.system_id for m in leaving}
            self._s.machines = [m for m in self._s.machines if m.system_id not in gone]
            change = "released " + ", ".join(m.hostname for m in leaving)
        else:
            change = "nothing to change"
        pool.count = count
        self._machines_changed = True
        return f"{action.id} succeeded: pool {pool_name} has {count} nodes ({change})"

    async def _add_machines(
        self, request_id: str, delta: NodePool, exclude: list[str], replacing: list[str]
    ) -> list[Machine]:
        """Acquire and deploy `delta.count` fresh machines of a pool under one request id,
        none of the cluster's nor of `exclude`, in place of `replacing` (their zones count
        as free); a failure gives back whatever it took."""
        cluster = self._s.cluster
        held: dict[str, Machine] = {}
        known = {m.system_id for m in self._s.machines}
        try:
            acquired = await self._calls.acquire(
                cluster,
                request_id,
                [delta],
                exclude_system_ids=sorted(known | set(exclude)),
                replacing=replacing,
            )
            held.update({m.system_id: m for m in acquired.machines})
            if workflow.patched(PATCH_RELEASE_SURPLUS):
                await release_surplus(self._calls, cluster, known | set(held))
            deployer = Deployer(
                cluster,
                self._calls,
                agent_token=self._s.agent_token,
                kubernetes_version=self._s.kubernetes_version,
                held=held,
                request_prefix=f"{request_id}-",
                control_plane_host=self._s.control_plane_host,
            )
            return await deployer.deploy_all(acquired.machines)
        except FailureError:
            # A failed acquire answers nothing, yet may have allocated part of the request:
            # give back whatever MAAS lists for the cluster beyond the nodes it runs on.
            await run_to_completion(self._release_scale_up(held, known))
            raise

    async def _release_scale_up(self, held: dict[str, Machine], known: set[str]) -> None:
        if held:
            await self._release(list(held), "scale-up failed")
        if workflow.patched(PATCH_RELEASE_FAILED_SCALE_UP):
            await release_surplus(
                self._calls, self._s.cluster, known, why="allocated by a failed scale-up"
            )

    async def _release(self, system_ids: list[str], why: str) -> None:
        cluster = self._s.cluster
        await self._calls.release(
            cluster, system_ids, f"metalgate: {why} (cluster {cluster.cluster_id})"
        )
