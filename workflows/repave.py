"""A rolling repave inside the management workflow: nodes replaced through MAAS, batch by batch.

domain.repave decides each batch's strategy and size; this module runs it:
- expand-first: fresh machines matching the pool are acquired and deployed, and joined
  (NodesReady), before the old nodes are taken out through the agent (drained, then removed
  from Kubernetes) and their machines released with the cluster's erase policy;
- contract-first: the old nodes are taken out and released first, then fresh machines join;
  when no other free machine matches the pool, a node's own machine is redeployed instead.
Control-plane nodes go one at a time and only while etcd keeps quorum; in dns mode the
endpoint's record stops naming a node before it is drained and names a fresh one once it
joined. Each step is a cluster event with its reason. A failed batch gives back what it took:
fresh machines not serving in place of an old node are released, and old nodes that stay
are uncordoned. MAAS calls go through the gateway, so a gateway that is down shows
WaitingForGateway, as for scale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.models import PLAN_MACHINES, PlanMachinesInput
    from domain.agent_wire import RUNNER_ARG, ActionKind, CommandState
    from domain.capacity_plan import CapacityPlan
    from domain.cluster import NodePool, RepaveStrategy
    from domain.maas import Machine
    from domain.management import RepaveAction
    from domain.phases import Phase, Reason
    from domain.repave import asks_for_free_machines, control_plane_refusal, next_batch
    from workflows.contracts import CommandResultSignal, ManageState
    from workflows.endpoint import Endpoint
    from workflows.gateway_calls import GatewayCalls, failure_reason
    from workflows.machine_steps import AddMachines, command_runner, redeploy_in_place
    from workflows.status import StatusRecorder, run_to_completion

# Histories recorded before it ran a repave as one agent command on the same machine.
PATCH_MAAS_REPAVE = "maas-repave"

# Run one agent command to its end: the final result, or None when the agent did not answer.
RunCommand = Callable[[str, ActionKind, dict[str, str]], Awaitable[CommandResultSignal | None]]


def _names(machines: list[Machine]) -> str:
    return ", ".join(m.hostname for m in machines)


def _blocked(message: str) -> ApplicationError:
    return ApplicationError(message, type=Reason.REPAVE_BLOCKED.value, non_retryable=True)


class Repave:
    def __init__(
        self,
        state: ManageState,
        calls: GatewayCalls,
        status: StatusRecorder,
        *,
        add_machines: AddMachines,
        run_command: RunCommand,
        endpoint: Endpoint,
    ) -> None:
        self._s = state
        self._calls = calls
        self._status = status
        self._add_machines = add_machines
        self._run_command = run_command
        self._endpoint = endpoint
        self._action_id = ""

    async def run(self, action: RepaveAction) -> str:
        """Repave the action's node or pool; answers the event line that ends it."""
        self._action_id = action.id
        targets = self._targets(action)
        if not targets:
            return f"{action.id} skipped: {action.node or action.pool} has no node to repave"
        pool = self._s.cluster.spec.pool(targets[0].pool)
        assert pool is not None  # machines only carry pools of the spec
        done: list[str] = []
        try:
            await self._roll(action, pool, targets, done)
        except FailureError as err:
            if is_cancelled_exception(err) or not done:
                raise
            reason, message = failure_reason(err)
            raise ApplicationError(
                f"{message}; repaved before it stopped: {', '.join(done)}",
                type=reason.value,
                non_retryable=True,
            ) from err
        return (
            f"{action.id} succeeded: repaved {len(done)} node(s) of pool {pool.name}: "
            + ", ".join(done)
        )

    def _targets(self, action: RepaveAction) -> list[Machine]:
        if action.pool is not None:
            return [m for m in self._s.machines if m.pool == action.pool]
        return [m for m in self._s.machines if m.system_id == action.system_id]

    async def _roll(
        self, action: RepaveAction, pool: NodePool, targets: list[Machine], done: list[str]
    ) -> None:
        control_plane = pool.name == self._s.cluster.spec.control_plane.name
        remaining = list(targets)
        batch_no = 0
        while remaining:
            batch_no += 1
            free = await self._free(pool, len(remaining)) if asks_for_free_machines(pool) else 0
            batch = next_batch(
                pool, control_plane=control_plane, remaining=len(remaining), free=free
            )
            if isinstance(batch, str):
                raise _blocked(batch)
            nodes, remaining = remaining[: batch.size], remaining[batch.size :]
            await self._step(None, f"repaving {_names(nodes)} {batch.strategy} ({batch.why})")
            request_id = f"{action.id}-{batch_no}"
            if batch.strategy == RepaveStrategy.EXPAND_FIRST:
                pairs = await self._expand_first(request_id, pool, nodes)
            else:
                pairs = await self._contract_first(request_id, pool, nodes, free)
            done += [f"{old.hostname} -> {new.hostname}" for old, new in pairs]
            failed = [old for old in nodes if old.system_id not in {o.system_id for o, _ in pairs}]
            if failed:
                raise _blocked(f"{_names(failed)} could not be taken out; see the events")

    # --- the two strategies ---------------------------------------------------------------

    async def _expand_first(
        self, request_id: str, pool: NodePool, olds: list[Machine]
    ) -> list[tuple[Machine, Machine]]:
        """Fresh machines join first; each old node leaves once one stands in for it."""
        await self._step(
            Reason.WAITING_FOR_DEPLOYMENT,
            f"acquiring and deploying {len(olds)} fresh machine(s) of pool {pool.name} "
            f"for {_names(olds)}",
        )
        fresh = await self._add_machines(
            request_id,
            pool.model_copy(update={"count": len(olds)}),
            [],
            [m.system_id for m in olds],
        )
        self._s.machines.extend(fresh)
        try:
            await self._join(fresh, f"for {_names(olds)}")
            await self._guard(olds)
        except FailureError as err:
            if not is_cancelled_exception(err):
                await run_to_completion(self._give_back(fresh, []))
            raise
        drained = await self._take_out(olds)
        pairs = list(zip(drained, fresh, strict=False))
        spare = fresh[len(drained) :]
        stay = [m for m in olds if m not in drained]
        await self._release(drained, "replaced by a repave")
        if spare or stay:
            await self._give_back(spare, stay)
        return pairs

    async def _contract_first(
        self, request_id: str, pool: NodePool, olds: list[Machine], free: int
    ) -> list[tuple[Machine, Machine]]:
        """Old nodes leave first; fresh machines take their place, or their own again."""
        await self._guard(olds)
        drained = await self._take_out(olds)
        stay = [m for m in olds if m not in drained]
        if stay:
            await self._give_back([], stay)
        if not drained:
            return []
        fresh_for, in_place = drained[:free], drained[free:]
        pairs: list[tuple[Machine, Machine]] = []
        if fresh_for:
            await self._release(fresh_for, "taken out by a contract-first repave")
            pairs += await self._bring_fresh(request_id, pool, fresh_for)
        if in_place:
            pairs += await self._redeploy(request_id, in_place)
        return pairs

    async def _bring_fresh(
        self, request_id: str, pool: NodePool, olds: list[Machine]
    ) -> list[tuple[Machine, Machine]]:
        await self._step(
            Reason.WAITING_FOR_DEPLOYMENT,
            f"acquiring and deploying {len(olds)} fresh machine(s) of pool {pool.name} "
            f"in place of {_names(olds)}",
        )
        try:
            # The old machines are released already: they hold no zone any more.
            fresh = await self._add_machines(
                request_id,
                pool.model_copy(update={"count": len(olds)}),
                [m.system_id for m in olds],
                [],
            )
        except FailureError as err:
            if not is_cancelled_exception(err):
                await self._step(
                    None, f"pool {pool.name} is {len(olds)} node(s) short: no fresh machine joined"
                )
            raise
        self._s.machines.extend(fresh)
        try:
            await self._join(fresh, f"in place of {_names(olds)}")
        except FailureError as err:
            if not is_cancelled_exception(err):
                await run_to_completion(self._give_back(fresh, []))
            raise
        return list(zip(olds, fresh, strict=True))

    async def _redeploy(
        self, request_id: str, olds: list[Machine]
    ) -> list[tuple[Machine, Machine]]:
        """No other free machine matches: each node's own machine is deployed again."""
        await self._step(
            Reason.WAITING_FOR_DEPLOYMENT,
            f"redeploying {_names(olds)} on the same machine(s): no other free machine matches",
        )
        redeployed: list[Machine] = []
        for old in olds:
            machine = await redeploy_in_place(
                self._s,
                self._calls,
                old,
                request_prefix=f"{request_id}-{old.system_id}-",
                reason=f"repave {self._action_id}",
            )
            self._s.machines = [
                machine if m.system_id == old.system_id else m for m in self._s.machines
            ]
            redeployed.append(machine)
        await self._join(redeployed, "after their redeploy")
        return list(zip(olds, redeployed, strict=True))

    # --- steps ----------------------------------------------------------------------------

    async def _free(self, pool: NodePool, wanted: int) -> int:
        """How many free machines MAAS says match the pool: a dry run, nothing is taken."""
        cluster = self._s.cluster
        plan = await self._calls.run(
            PLAN_MACHINES,
            PlanMachinesInput(
                account=cluster.account, pools=[pool.model_copy(update={"count": wanted})]
            ),
            CapacityPlan,
        )
        return plan.pools[0].matching if plan.pools else 0

    async def _join(self, machines: list[Machine], why: str) -> None:
        """Wait until the agent reports every one of `machines` Ready (NodesReady)."""
        names = {m.hostname for m in machines}
        await self._step(
            Reason.WAITING_FOR_AGENT,
            f"deployed {_names(machines)} {why}; waiting for them to join (NodesReady)",
            machines_changed=True,
        )
        timeout = self._s.timeouts.agent_ready
        try:
            await workflow.wait_condition(
                lambda: names <= {n.hostname for n in self._s.nodes if n.ready},
                timeout=timedelta(seconds=timeout),
            )
        except TimeoutError:
            late = sorted(names - {n.hostname for n in self._s.nodes if n.ready})
            raise ApplicationError(
                f"{', '.join(late)} did not report Ready within {timeout:.0f}s",
                type=Reason.AGENT_TIMEOUT.value,
                non_retryable=True,
            ) from None
        await self._step(None, f"{_names(machines)} joined (NodesReady)")
        if any(self._is_control_plane(m) for m in machines):
            await self._endpoint.control_plane_changed(announce=True)

    async def _guard(self, olds: list[Machine]) -> None:
        """Refuse to take control-plane nodes out when etcd would lose quorum; otherwise a
        dns endpoint stops naming them before they are drained."""
        if not any(self._is_control_plane(m) for m in olds):
            return
        cp = self._s.cluster.spec.control_plane.name
        why = control_plane_refusal(olds, self._s.machines, self._s.nodes, cp)
        if why is not None:
            raise _blocked(f"{_names(olds)} stays: {why}")
        await self._endpoint.control_plane_changed([m.system_id for m in olds], announce=True)

    async def _take_out(self, olds: list[Machine]) -> list[Machine]:
        """Drain old nodes through the agent of a Ready control-plane node that stays (the
        command's runner) and take them out of Kubernetes (and etcd); answers those that
        left (the others failed and are still nodes)."""
        await self._step(
            Reason.WAITING_FOR_DRAIN,
            f"draining {_names(olds)} through the agent before their machines leave",
        )
        runner = command_runner(self._s, {m.system_id for m in olds})
        failures = await asyncio.gather(*(self._take_out_one(m, runner) for m in olds))
        for old, failure in zip(olds, failures, strict=True):
            if failure is not None:
                await self._step(None, f"drain of {old.hostname} failed: {failure}")
        drained = [m for m, failure in zip(olds, failures, strict=True) if failure is None]
        # Their agents' reports are of the nodes that left: a redeployed machine keeps its
        # hostname, and only a report after its deploy may count for its join.
        gone = {m.hostname for m in drained}
        self._s.nodes = [n for n in self._s.nodes if n.hostname not in gone]
        return drained

    async def _take_out_one(self, old: Machine, runner: Machine | None) -> str | None:
        if runner is None and self._is_control_plane(old):
            # Its etcd member is removed through another member's etcd.
            return "no other control-plane node is Ready to take it out through"
        return await self._agent(ActionKind.REPAVE, old, "out", runner)

    async def _give_back(self, fresh: list[Machine], stay: list[Machine]) -> None:
        """Undo a batch's unfinished part: release `fresh`, uncordon the old nodes that stay."""
        if fresh:
            await self._release(fresh, "taken by a repave that did not finish")
        if any(self._is_control_plane(m) for m in [*fresh, *stay]):
            await self._endpoint.control_plane_changed(announce=True)
        for old in stay:
            failure = await self._agent(ActionKind.UNCORDON, old, "uncordon")
            line = f"uncordon of {old.hostname} failed: {failure}" if failure else None
            await self._step(None, line or f"{old.hostname} stays in the cluster, uncordoned")

    async def _release(self, machines: list[Machine], why: str) -> None:
        cluster = self._s.cluster
        await self._calls.release(
            cluster,
            [m.system_id for m in machines],
            f"metalgate: {why} (cluster {cluster.cluster_id})",
        )
        gone = {m.system_id for m in machines}
        names = {m.hostname for m in machines}
        self._s.machines = [m for m in self._s.machines if m.system_id not in gone]
        self._s.nodes = [n for n in self._s.nodes if n.hostname not in names]
        self._s.remediation = [t for t in self._s.remediation if t.system_id not in gone]
        await self._step(
            None,
            f"released {_names(machines)} ({why}; erase {cluster.spec.erase_policy})",
            machines_changed=True,
        )

    async def _agent(
        self, kind: ActionKind, machine: Machine, step: str, runner: Machine | None = None
    ) -> str | None:
        """Run one agent command on `machine`'s node, through `runner`'s agent (else the first
        control plane's); None when it succeeded, else why not."""
        args = {"node": machine.hostname, "system_id": machine.system_id}
        if runner is not None:
            args[RUNNER_ARG] = runner.hostname
        result = await self._run_command(
            f"{self._action_id}-{machine.system_id}-{step}", kind, args
        )
        if result is None:
            return f"no result from the agent within {self._s.timeouts.command:.0f}s"
        if result.state != CommandState.SUCCEEDED:
            return result.message or str(result.state)
        return None

    def _is_control_plane(self, machine: Machine) -> bool:
        return machine.pool == self._s.cluster.spec.control_plane.name

    async def _step(
        self, reason: Reason | None, line: str, *, machines_changed: bool = False
    ) -> None:
        """One step as a cluster event; while Repaving, the cluster's reason says what it
        waits on (an Unreachable cluster keeps its own)."""
        event = f"{self._action_id}: {line}"
        machines = list(self._s.machines) if machines_changed else None
        if self._status.phase == Phase.REPAVING:
            await self._status.set(
                Phase.REPAVING,
                reason=reason,
                message=line if reason else "",
                machines=machines,
                event=event,
            )
        else:
            await self._status.event(event, machines=machines)
