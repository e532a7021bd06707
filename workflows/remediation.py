"""The remediation ladder inside the management workflow: watch, queue steps, run them.

Decisions are domain.remediation's pure functions; this module turns them into queued
RemediateActions, cluster events and MAAS calls through the gateway (so a gateway that is
down shows WaitingForGateway, as for scale).

A control-plane node is taken out of the cluster before it is redeployed or replaced: the
agent of a surviving, Ready control-plane node removes its etcd member (and its Node), so
etcd never counts a member that will not come back, and in mode dns the endpoint's record
leaves it until the step is done. The step waits if no such agent answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import RELEASE_MACHINES, ReleaseMachinesInput, ReleaseMachinesResult
    from activities.remediation_models import (
        POWER_CYCLE_MACHINE,
        QUARANTINE_MACHINE,
        RemediateMachineInput,
        RemediateMachineResult,
    )
    from domain.agent_wire import RUNNER_ARG, ActionKind, CommandState
    from domain.maas import Machine
    from domain.management import RemediateAction
    from domain.phases import Phase, Reason
    from domain.remediation import (
        LADDER,
        NodeRemediation,
        RemediationStep,
        is_due,
        next_due_at,
        next_step,
        observe,
        refusal,
    )
    from workflows.contracts import CommandResultSignal, ManageState
    from workflows.endpoint import Endpoint
    from workflows.gateway_calls import GatewayCalls
    from workflows.machine_steps import AddMachines, command_runner, redeploy_in_place
    from workflows.status import StatusRecorder

PATCH_REMEDIATION = "remediation"
# Histories recorded before control-plane steps took the node out (etcd member, endpoint).
PATCH_CONTROL_PLANE_TAKE_OUT = "remediation-control-plane-take-out"

# Sends the action's agent command and answers its final result (None: none came in time).
AgentCommand = Callable[[RemediateAction, dict[str, str]], Awaitable[CommandResultSignal | None]]


class Remediation:
    def __init__(self, state: ManageState, calls: GatewayCalls, status: StatusRecorder) -> None:
        self._s = state
        self._calls = calls
        self._status = status

    # --- watching: called by the main loop between actions ----------------------------

    def _entry(self, system_id: str) -> NodeRemediation | None:
        return next((t for t in self._s.remediation if t.system_id == system_id), None)

    def _queued(self, system_id: str) -> bool:
        return any(
            isinstance(a, RemediateAction) and a.system_id == system_id for a in self._s.pending
        )

    async def review(
        self,
        next_id: Callable[[ActionKind], str],
        queue: Callable[[RemediateAction], object],
    ) -> None:
        """Track health from the latest reports and queue the steps now due and allowed."""
        now = workflow.time()
        tracked, recovered = observe(
            self._s.remediation,
            self._s.machines,
            self._s.nodes,
            agent_silent=self._s.phase == Phase.UNREACHABLE,
            now=now,
        )
        self._s.remediation = tracked
        for entry in recovered:
            if entry.active:
                await self._event(f"remediation of {entry.hostname} done: it is Ready again")
        spec = self._s.cluster.spec
        for entry in tracked:
            step = next_step(entry)
            if step is None or self._queued(entry.system_id) or not is_due(entry, spec, now):
                continue
            why = refusal(entry, tracked, spec, self._s.machines)
            if why is not None:
                if why != entry.blocked:
                    entry.blocked = why
                    await self._event(
                        f"remediation of {entry.hostname} held ({Reason.REMEDIATION_BLOCKED}): "
                        f"{why}"
                    )
                continue
            entry.blocked = ""
            # Marked at once, so the step counts against max_in_remediation while queued.
            entry.step, entry.step_at = step, now
            queue(
                RemediateAction(
                    id=next_id(ActionKind.REMEDIATE),
                    node=entry.hostname,
                    system_id=entry.system_id,
                    step=step,
                    reason=f"{Reason.NODE_UNHEALTHY}: "
                    f"{'agent silent' if entry.agent_silent else 'not Ready'} for "
                    f"{now - entry.unhealthy_since:.0f}s",
                )
            )
        self._label_machines()

    def wake_at(self) -> float | None:
        return next_due_at(self._s.remediation, self._s.cluster.spec)

    def _label_machines(self) -> None:
        labels = {t.system_id: t.label() for t in self._s.remediation}
        for machine in self._s.machines:
            machine.remediation = labels.get(machine.system_id, "")

    async def _event(self, line: str) -> None:
        self._label_machines()
        await self._status.event(line, machines=list(self._s.machines))

    # --- steps: run as queued actions -----------------------------------------------------

    async def run(
        self, action: RemediateAction, add_machines: AddMachines, agent_command: AgentCommand
    ) -> str:
        machine = next((m for m in self._s.machines if m.system_id == action.system_id), None)
        if machine is None:
            return f"{action.id} skipped: {action.node} is no longer one of the cluster's nodes"
        await self._event(f"remediation {action.step} of {action.node} started ({action.reason})")
        takes_out = (
            action.step != RemediationStep.POWER_CYCLE
            and machine.pool == self._s.cluster.spec.control_plane.name
            and workflow.patched(PATCH_CONTROL_PLANE_TAKE_OUT)
        )
        if takes_out:
            refused = await self._take_out(machine, action, agent_command)
            if refused is not None:
                self._again_later(action)
                return f"{action.id} failed ({Reason.REMEDIATION_BLOCKED}): {refused}"
        match action.step:
            case RemediationStep.POWER_CYCLE:
                done = await self._maas(POWER_CYCLE_MACHINE, machine, action)
                outcome = done.detail
            case RemediationStep.REDEPLOY:
                outcome = await self._redeploy(machine, action)
            case RemediationStep.REPLACE:
                outcome = await self._replace(machine, action, add_machines)
        if takes_out:
            await self._point_endpoint(exclude=[])
        entry = self._entry(action.system_id)
        if entry is not None:
            # The node gets a full threshold from now to come back before the next step.
            entry.step_at = workflow.time()
        self._label_machines()
        return f"{action.id} succeeded: {action.step} of {action.node}: {outcome}"

    # --- control-plane nodes: out of etcd and the endpoint first -------------------------

    async def _take_out(
        self, machine: Machine, action: RemediateAction, agent_command: AgentCommand
    ) -> str | None:
        """Remove the node's etcd member through a surviving control plane and leave it out
        of the endpoint; answers why not, if it could not."""
        runner = command_runner(self._s, [machine.system_id])
        if runner is None:
            return (
                f"no other control-plane node is Ready to remove the etcd member of "
                f"{machine.hostname} through; it is tried again later"
            )
        result = await agent_command(
            action,
            {"node": machine.hostname, RUNNER_ARG: runner.hostname, "etcd_member": "true"},
        )
        if result is None or result.state != CommandState.SUCCEEDED:
            why = "no answer in time" if result is None else f"{result.state}: {result.message}"
            return (
                f"removing the etcd member of {machine.hostname} through {runner.hostname} "
                f"did not succeed ({why}); it is tried again later"
            )
        await self._event(f"etcd member of {machine.hostname} removed through {runner.hostname}")
        await self._point_endpoint(exclude=[machine.system_id])
        return None

    async def _point_endpoint(self, exclude: list[str]) -> None:
        addresses = await Endpoint(self._s.cluster, self._calls).point_at_control_plane(exclude)
        if addresses is not None:
            await self._event(
                "control-plane endpoint now points at " + (", ".join(addresses) or "no address")
            )

    def _again_later(self, action: RemediateAction) -> None:
        """The step did not run: the same step is due again after a full threshold.

        Only steps after the power cycle take a node out, so there is a step before it."""
        entry = self._entry(action.system_id)
        if entry is not None:
            entry.step = LADDER[LADDER.index(action.step) - 1]
            entry.step_at = workflow.time()

    async def _maas(
        self, activity: str, machine: Machine, action: RemediateAction
    ) -> RemediateMachineResult:
        cluster = self._s.cluster
        return await self._calls.run(
            activity,
            RemediateMachineInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                system_id=machine.system_id,
                pool=machine.pool,
                reason=action.reason,
                poll_interval_seconds=self._s.timeouts.release_poll_interval,
            ),
            RemediateMachineResult,
            start_to_close=self._s.timeouts.release_none,
        )

    async def _redeploy(self, machine: Machine, action: RemediateAction) -> str:
        deployed = await redeploy_in_place(
            self._s, self._calls, machine, request_prefix=f"{action.id}-", reason=action.reason
        )
        self._swap(machine, deployed)
        if deployed.system_id != machine.system_id:
            return f"redeploy failed; replaced by {deployed.hostname}"
        return "redeployed"

    async def _replace(
        self, machine: Machine, action: RemediateAction, add_machines: AddMachines
    ) -> str:
        pool = self._s.cluster.spec.pool(machine.pool)
        assert pool is not None  # refusal() checked
        # The node is already unhealthy: it is not drained through the agent first, and
        # Kubernetes evicts its pods once it is gone. The fresh one may take its zone.
        [fresh] = await add_machines(
            action.id, pool.model_copy(update={"count": 1}), [], [machine.system_id]
        )
        self._swap(machine, fresh)
        quarantined = await self._maas(QUARANTINE_MACHINE, machine, action)
        cluster = self._s.cluster
        await self._calls.run(
            RELEASE_MACHINES,
            ReleaseMachinesInput(
                account=cluster.account,
                cluster_id=cluster.cluster_id,
                system_ids=[machine.system_id],
                erase_policy=cluster.spec.erase_policy,
                comment=f"metalgate: replaced by remediation (cluster {cluster.cluster_id})",
            ),
            ReleaseMachinesResult,
        )
        return f"replaced by {fresh.hostname}; {machine.hostname} {quarantined.detail}"

    def _swap(self, old: Machine, new: Machine) -> None:
        self._s.machines = [new if m.system_id == old.system_id else m for m in self._s.machines]
        if new.system_id != old.system_id:
            self._s.remediation = [t for t in self._s.remediation if t.system_id != old.system_id]
            self._s.nodes = [n for n in self._s.nodes if n.hostname != old.hostname]
