"""Pure helpers for machine acquisition: matching constraints and checking that a whole
request fits before anything is taken.

MAAS's allocate `dry_run` answers for one machine at a time, so it cannot tell whether N
machines are free; we count Ready machines matching each pool's constraints ourselves and
keep `dry_run` for what only MAAS knows: whether the tag and pool names exist (allocate
takes one zone, so listed zones are checked against MAAS's list of zones instead).
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel

from activities.maas_answers import STATUS_READY, MaasMachine
from activities.zone_spread import ZoneSpread
from domain.cluster import MachineConstraints, NodePool
from domain.naming import QUARANTINE_TAG


def matches(machine: MaasMachine, constraints: MachineConstraints) -> bool:
    """Would MAAS's allocate pick this machine for these constraints (ignoring status)?"""
    tags = set(machine.tag_names)
    if not set(constraints.tags) <= tags:
        return False
    if tags & {*constraints.not_tags, QUARANTINE_TAG}:
        return False
    if constraints.zones and machine.zone not in constraints.zones:
        return False
    if constraints.resource_pool and machine.pool != constraints.resource_pool:
        return False
    if machine.cpu_count < constraints.min_cpu:
        return False
    return machine.memory >= constraints.min_memory_mib


def allocate_params(
    constraints: MachineConstraints, *, quarantine: bool, zone: str | None = None
) -> dict[str, Any]:
    """MAAS allocate parameters for these constraints.

    `quarantine` says whether the quarantine tag exists: MAAS rejects a `not_tags` naming an
    unknown tag (400), and while it does not exist no machine can carry it. MAAS takes one
    `zone`: the picked machine's, or none (listed zones are checked by name elsewhere).
    """
    not_tags = [*constraints.not_tags, QUARANTINE_TAG] if quarantine else constraints.not_tags
    params: dict[str, Any] = {
        "cpu_count": str(constraints.min_cpu),
        "mem": str(constraints.min_memory_mib),
    }
    if not_tags:
        params["not_tags"] = list(not_tags)
    if constraints.tags:
        params["tags"] = list(constraints.tags)
    if zone:
        params["zone"] = zone
    if constraints.resource_pool:
        params["pool"] = constraints.resource_pool
    return params


class PoolPlan(BaseModel):
    """What one pool still needs and which free machines it may take, best first.

    With zones, the first `needed` candidates are the ones the zone spread picks, and `note`
    says which zone had no room for its share.
    """

    pool: NodePool
    needed: int
    candidates: list[str]
    note: str | None = None


def plan_capacity(
    needs: dict[str, int],
    pools: list[NodePool],
    machines: list[MaasMachine],
    exclude: set[str],
    order: str = "",
    held_zones: dict[str, list[str]] | None = None,
) -> tuple[list[PoolPlan], list[str]]:
    """Assign distinct Ready machines to every pool that still needs some.

    `held_zones` names, per pool, the zones of the machines the cluster already runs in it,
    so a pool with zones is spread counting them (activities.zone_spread).

    Returns the plans and one shortfall line per pool that cannot be filled. Pools with the
    fewest candidates pick first, so a narrow pool is not starved by a broad one. Candidates
    come in an order drawn from `order` (cluster and request): acquires in flight together
    read the same Ready list, and in MAAS's order they would all race for its first machines
    (each lost race one more allocate, growing with the square of the acquires), while a
    retry of one request tries the same machines again.
    """
    free = [m for m in machines if m.status == STATUS_READY and m.system_id not in exclude]
    random.Random(order).shuffle(free)
    wanted = [p for p in pools if needs.get(p.name, 0) > 0]
    candidates = {p.name: [m for m in free if matches(m, p.constraints)] for p in wanted}
    taken: set[str] = set()
    plans: list[PoolPlan] = []
    shortfalls: list[str] = []
    for pool in sorted(wanted, key=lambda p: len(candidates[p.name])):
        needed = needs[pool.name]
        spread = ZoneSpread(pool.constraints.zones, (held_zones or {}).get(pool.name, []))
        mine = spread.order([m for m in candidates[pool.name] if m.system_id not in taken], needed)
        if len(mine) < needed:
            shortfalls.append(
                f"pool {pool.name!r} asks {needed} machine(s) matching "
                f"{describe(pool.constraints)}, MAAS has {len(mine)} available"
            )
        ids = [m.system_id for m in mine]
        taken.update(ids[:needed])
        plans.append(
            PoolPlan(pool=pool, needed=needed, candidates=ids, note=spread.note(pool.name))
        )
    return plans, shortfalls


def describe(constraints: MachineConstraints) -> str:
    """Constraints as a person reads them in an error message."""
    parts = [f"cpu>={constraints.min_cpu}", f"memory>={constraints.min_memory_mib}MiB"]
    if constraints.tags:
        parts.append(f"tags={constraints.tags}")
    if constraints.not_tags:
        parts.append(f"not_tags={constraints.not_tags}")
    if constraints.zones:
        parts.append(zones_constraint(constraints.zones))
    if constraints.resource_pool:
        parts.append(f"resource_pool={constraints.resource_pool}")
    return "{" + ", ".join(parts) + "}"


def zones_constraint(zones: list[str]) -> str:
    """`zone=az1`, or `zones=az1,az2`, as the spec names them."""
    return f"zone={zones[0]}" if len(zones) == 1 else f"zones={','.join(zones)}"


def zones_problem(constraints: MachineConstraints, known: set[str]) -> str:
    """What is wrong with the listed zone names ('' if nothing): MAAS's allocate takes one
    zone, so they are checked against MAAS's list of zones, not by a dry run."""
    unknown = [z for z in constraints.zones if z not in known]
    if not unknown:
        return ""
    return (
        f"no zone {', '.join(unknown)}; its zones are {', '.join(sorted(known))}: "
        "fix constraints.zones"
    )
