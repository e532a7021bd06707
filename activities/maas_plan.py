"""The plan activity: what MAAS would hand a cluster's pools, answered without taking anything.

Read-only by construction: names are checked with allocate `dry_run` (MAAS answers 400 for
an unknown tag or pool and allocates nothing) and zones against MAAS's zone list, capacity is counted on one read of the
Ready machines (the same read and planner `acquire_machines` uses, so the plan says what
acquire would do), and a pool that falls short is explained by the Ready machines that miss
exactly one of its constraints.
"""

from __future__ import annotations

from typing import Any

from maas.client.bones import CallError
from temporalio import activity

from activities.maas_answers import ANY_JSON, MACHINES, NAMED, RELEASED_OR_RELEASING, MaasMachine
from activities.maas_capacity import (
    allocate_params,
    describe,
    matches,
    plan_capacity,
    zones_constraint,
    zones_problem,
)
from activities.maas_session import HTTP_BAD_REQUEST, HTTP_CONFLICT, MaasSessions, call_error_text
from activities.models import PLAN_MACHINES, PlanMachinesInput
from domain.capacity_plan import (
    CapacityPlan,
    PlannedMachine,
    PoolPlan,
    Relaxation,
    by_zone,
    zones_text,
)
from domain.cluster import MachineConstraints, NodePool
from domain.maas import MaasAccount
from domain.naming import OWNER_DATA_POOL, QUARANTINE_TAG, owner_agent_name


def relaxations(constraints: MachineConstraints) -> list[tuple[str, MachineConstraints]]:
    """Each constraint of a pool, with the constraints that remain without it."""
    out: list[tuple[str, MachineConstraints]] = []
    for tag in constraints.tags:
        rest = [t for t in constraints.tags if t != tag]
        out.append((f"tag {tag}", constraints.model_copy(update={"tags": rest})))
    for tag in constraints.not_tags:
        rest = [t for t in constraints.not_tags if t != tag]
        out.append((f"not tag {tag}", constraints.model_copy(update={"not_tags": rest})))
    if constraints.zones:
        out.append(
            (zones_constraint(constraints.zones), constraints.model_copy(update={"zones": []}))
        )
    if constraints.resource_pool:
        out.append(
            (
                f"resource_pool={constraints.resource_pool}",
                constraints.model_copy(update={"resource_pool": None}),
            )
        )
    if constraints.min_cpu > 1:
        out.append(
            (f"min_cpu>={constraints.min_cpu}", constraints.model_copy(update={"min_cpu": 1}))
        )
    # 256 MiB is the smallest a spec may ask: "without" the memory minimum means that.
    if constraints.min_memory_mib > 256:
        out.append(
            (
                f"min_memory_mib>={constraints.min_memory_mib}",
                constraints.model_copy(update={"min_memory_mib": 256}),
            )
        )
    return out


def explain(pool: NodePool, free: list[MaasMachine]) -> list[Relaxation]:
    """Per constraint, the free machines that miss only that one, best lead first."""
    found: list[Relaxation] = []
    for name, relaxed in relaxations(pool.constraints):
        zones = [m.zone for m in free if matches(m, relaxed) and not matches(m, pool.constraints)]
        if zones:
            found.append(Relaxation(constraint=name, machines=len(zones), by_zone=by_zone(zones)))
    return sorted(found, key=lambda r: -r.machines)


def pool_summary(plan: PoolPlan, constraints: MachineConstraints) -> str:
    head = (
        f"{plan.pool}: {plan.asked} asked, {plan.matching} Ready machine(s) match "
        f"{describe(constraints)}"
    )
    if plan.by_zone:
        head += f" ({zones_text(plan.by_zone)})"
    if plan.problem:
        return f"{plan.pool}: {plan.asked} asked; {plan.problem}"
    if plan.satisfiable:
        taken = ", ".join(f"{m.hostname or m.system_id} ({m.zone})" for m in plan.would_take)
        line = f"{head}; would take {taken}" if taken else head
        return f"{line}; {plan.note}" if plan.note else line
    more = "; ".join(
        f"{r.machines} more without {r.constraint} ({zones_text(r.by_zone)})"
        for r in plan.relaxations
    )
    return f"{head}; short by {plan.asked - plan.matching}" + (f"; {more}" if more else "")


class PlanActivities:
    """The plan, on the gateway's queue, through the gateway's shared MAAS sessions."""

    def __init__(self, sessions: MaasSessions) -> None:
        self.sessions = sessions

    def all(self) -> list[Any]:
        return [self.plan_machines]

    async def _names_problem(
        self, account: MaasAccount, pool: NodePool, quarantine: bool, zones: set[str]
    ) -> str:
        """What MAAS says is wrong with the pool's tag, zone or pool names ('' if nothing)."""
        problem = zones_problem(pool.constraints, zones)
        if problem:
            return f"MAAS has {problem}"
        try:
            await self.sessions.call(
                account,
                "Machines",
                "allocate",
                ANY_JSON,
                dry_run=True,
                **allocate_params(pool.constraints, quarantine=quarantine),
            )
        except CallError as error:
            if error.status == HTTP_BAD_REQUEST:
                return f"MAAS rejects the constraints: {call_error_text(error, account)}"
            if error.status != HTTP_CONFLICT:  # 409: nothing free now; counted below.
                raise
        return ""

    async def _held_zones(
        self, account: MaasAccount, cluster_id: str | None
    ) -> dict[str, list[str]]:
        """Per pool, the zones of a cluster's live machines: a scale-up keeps the balance."""
        if cluster_id is None:
            return {}
        owned = await self.sessions.call(
            account, "Machines", "read", MACHINES, agent_name=[owner_agent_name(cluster_id)]
        )
        held: dict[str, list[str]] = {}
        for machine in owned:
            pool = machine.owner_data.get(OWNER_DATA_POOL)
            if pool and machine.status not in RELEASED_OR_RELEASING:
                held.setdefault(pool, []).append(machine.zone)
        return held

    @activity.defn(name=PLAN_MACHINES)
    async def plan_machines(self, input: PlanMachinesInput) -> CapacityPlan:
        """Per pool: the Ready machines acquire would take, or why it cannot."""
        account = input.account
        tags = await self.sessions.call(account, "Tags", "read", NAMED)
        quarantine = any(t.name == QUARANTINE_TAG for t in tags)
        wanted = [p for p in input.pools if p.count > 0]
        zones: set[str] = set()
        if any(p.constraints.zones for p in wanted):
            zones = {z.name for z in await self.sessions.call(account, "Zones", "read", NAMED)}
        problems = {
            p.name: await self._names_problem(account, p, quarantine, zones) for p in wanted
        }
        ready = await self.sessions.call(account, "Machines", "read", MACHINES, status="ready")
        by_id = {m.system_id: m for m in ready}
        valid = [p for p in wanted if not problems[p.name]]
        plans, _ = plan_capacity(
            {p.name: p.count for p in valid},
            valid,
            ready,
            set(),
            held_zones=await self._held_zones(account, input.cluster_id),
        )
        answers: dict[str, PoolPlan] = {}
        taken: set[str] = set()
        for capacity in plans:  # the planner's order: a narrow pool picks first
            pool = capacity.pool
            mine = [by_id[sid] for sid in capacity.candidates]
            chosen = mine[: capacity.needed]
            taken.update(m.system_id for m in chosen)
            ok = len(mine) >= capacity.needed
            # Machines other pools would take are not this pool's to count.
            free = [m for m in ready if m.system_id not in taken]
            plan = PoolPlan(
                pool=pool.name,
                asked=capacity.needed,
                satisfiable=ok,
                matching=len(mine),
                by_zone=by_zone([m.zone for m in mine]),
                would_take=[
                    PlannedMachine(system_id=m.system_id, hostname=m.hostname, zone=m.zone)
                    for m in chosen
                ]
                if ok
                else [],
                relaxations=[] if ok else explain(pool, free),
                note=(capacity.note or "") if ok else "",
                summary="",
            )
            answers[pool.name] = plan.model_copy(
                update={"summary": pool_summary(plan, pool.constraints)}
            )
        for pool in wanted:
            if problems[pool.name]:
                plan = PoolPlan(
                    pool=pool.name,
                    asked=pool.count,
                    satisfiable=False,
                    matching=0,
                    problem=problems[pool.name],
                    summary="",
                )
                answers[pool.name] = plan.model_copy(
                    update={"summary": pool_summary(plan, pool.constraints)}
                )
        ordered = [answers[p.name] for p in wanted]
        satisfiable = all(p.satisfiable for p in ordered)
        asked = sum(p.asked for p in ordered)
        summary = (
            f"MAAS can serve all {asked} machine(s) asked"
            if satisfiable
            else "MAAS cannot serve this request: "
            + "; ".join(p.summary for p in ordered if not p.satisfiable)
        )
        return CapacityPlan(satisfiable=satisfiable, pools=ordered, summary=summary)
