"""The capacity planner on its own: distinct machines per pool, and an order per request."""

from __future__ import annotations

from activities.maas_answers import STATUS_READY, MaasMachine
from activities.maas_capacity import plan_capacity
from domain.cluster import NodePool

FREE = [
    MaasMachine(system_id=f"m{i:03d}", status=STATUS_READY, cpu_count=4, memory=8192)
    for i in range(40)
]
POOLS = [NodePool(name="cp", count=1), NodePool(name="workers", count=2)]


def candidates(order: str) -> list[str]:
    plans, shortfalls = plan_capacity({"cp": 1, "workers": 2}, POOLS, FREE, set(), order=order)
    assert shortfalls == []
    return [sid for plan in plans for sid in plan.candidates[: plan.needed]]


def test_concurrent_requests_try_different_machines_first() -> None:
    # In MAAS's list order every acquire in flight would race for the same first machines,
    # and all but one lose each race: allocations grow with the square of the acquires.
    firsts = {tuple(candidates(f"cluster-{n}/create")) for n in range(10)}
    assert len(firsts) == 10


def test_a_retry_of_one_request_tries_the_same_machines() -> None:
    assert candidates("cluster-1/create") == candidates("cluster-1/create")


def test_pools_never_share_a_planned_machine() -> None:
    planned = candidates("cluster-7/create")
    assert len(set(planned)) == 3
