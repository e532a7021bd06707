"""A rolling repave's decisions: the pool's repave settings, batches and the quorum guard."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.agent_wire import NodeReport
from domain.cluster import ClusterSpec, NodePool, RepavePolicy, RepaveStrategy
from domain.maas import Machine
from domain.repave import Batch, asks_for_free_machines, control_plane_refusal, next_batch


def pool(**repave: Any) -> NodePool:
    return NodePool(name="workers", count=4, repave=RepavePolicy.model_validate(repave))


def test_defaults_roll_one_node_at_a_time_choosing_by_free_machines() -> None:
    policy = NodePool(name="workers", count=3).repave
    assert (policy.strategy, policy.max_surge, policy.max_unavailable) == ("auto", 1, 1)


@pytest.mark.parametrize(
    ("repave", "message"),
    [
        ({"max_surge": 0, "max_unavailable": 0}, "both 0"),
        ({"strategy": "expand-first", "max_surge": 0}, "expand-first needs repave.max_surge"),
        (
            {"strategy": "contract-first", "max_unavailable": 0},
            "contract-first needs repave.max_unavailable",
        ),
        ({"strategy": "sideways"}, "strategy"),
        ({"max_surge": -1}, "max_surge"),
        ({"max_unavailable": True}, "max_unavailable"),
    ],
)
def test_settings_that_could_never_roll_are_refused_naming_the_field(
    repave: dict[str, Any], message: str
) -> None:
    spec = {
        "name": "edge",
        "control_plane": {"name": "cp", "count": 1},
        "worker_pools": [{"name": "workers", "count": 2, "repave": repave}],
    }
    with pytest.raises(ValidationError) as refused:
        ClusterSpec.model_validate(spec)
    text = str(refused.value)
    assert "worker_pools.0.repave" in text and message in text


def test_expand_first_takes_max_surge_at_a_time_without_asking_maas() -> None:
    p = pool(strategy="expand-first", max_surge=2)
    assert not asks_for_free_machines(p)
    batch = next_batch(p, control_plane=False, remaining=3, free=0)
    assert batch == Batch(strategy="expand-first", size=2, why="strategy expand-first, max_surge 2")
    last = next_batch(p, control_plane=False, remaining=1, free=0)
    assert isinstance(last, Batch) and last.size == 1


def test_contract_first_takes_max_unavailable_at_a_time() -> None:
    p = pool(strategy="contract-first", max_unavailable=3)
    assert asks_for_free_machines(p)
    batch = next_batch(p, control_plane=False, remaining=4, free=9)
    assert isinstance(batch, Batch) and (batch.strategy, batch.size) == ("contract-first", 3)


def test_auto_expands_while_free_machines_match_and_contracts_when_none_do() -> None:
    p = pool(max_surge=3, max_unavailable=2)
    assert asks_for_free_machines(p)
    batch = next_batch(p, control_plane=False, remaining=4, free=2)
    assert isinstance(batch, Batch)
    assert (batch.strategy, batch.size) == (RepaveStrategy.EXPAND_FIRST, 2)
    assert "auto: 2 free machine(s) match pool workers" in batch.why
    batch = next_batch(p, control_plane=False, remaining=4, free=0)
    assert isinstance(batch, Batch)
    assert (batch.strategy, batch.size) == (RepaveStrategy.CONTRACT_FIRST, 2)
    assert "auto: no free machine matches pool workers" in batch.why
    # max_surge 0: never expand, even with free machines.
    no_surge = next_batch(pool(max_surge=0), control_plane=False, remaining=4, free=5)
    assert isinstance(no_surge, Batch) and no_surge.strategy == RepaveStrategy.CONTRACT_FIRST


def test_auto_without_free_machines_or_unavailability_says_how_to_go_on() -> None:
    refused = next_batch(pool(max_unavailable=0), control_plane=False, remaining=4, free=0)
    assert isinstance(refused, str)
    assert "max_unavailable is 0" in refused and "max_unavailable: 1" in refused


def test_control_plane_nodes_go_one_at_a_time_whatever_the_pool_says() -> None:
    p = pool(max_surge=3, max_unavailable=3)
    for free in (0, 5):
        batch = next_batch(p, control_plane=True, remaining=3, free=free)
        assert isinstance(batch, Batch) and batch.size == 1
        assert "control-plane nodes go one at a time" in batch.why


def machines(count: int) -> list[Machine]:
    return [Machine(system_id=f"m{i}", hostname=f"cp-{i}", pool="cp") for i in range(count)]


def ready(ms: list[Machine], *, except_: tuple[int, ...] = ()) -> list[NodeReport]:
    return [
        NodeReport(hostname=m.hostname, ready=i not in except_, role="control-plane")
        for i, m in enumerate(ms)
    ]


def test_one_of_three_healthy_control_plane_nodes_may_leave() -> None:
    ms = machines(3)
    assert control_plane_refusal([ms[0]], ms, ready(ms), "cp") is None


def test_leaving_with_another_member_down_would_break_quorum() -> None:
    ms = machines(3)
    why = control_plane_refusal([ms[0]], ms, ready(ms, except_=(1,)), "cp")
    assert why is not None and "1 other ready control-plane node(s), 2 of 2 needed" in why


def test_a_lone_control_plane_leaves_only_after_its_replacement_joined() -> None:
    ms = machines(1)
    why = control_plane_refusal([ms[0]], ms, ready(ms), "cp")
    assert why is not None and "only expand-first" in why
    grown = machines(2)  # the fresh one recorded and Ready: the old one may go
    assert control_plane_refusal([grown[0]], grown, ready(grown), "cp") is None
    assert control_plane_refusal([grown[0]], grown, ready(grown, except_=(1,)), "cp") is not None
