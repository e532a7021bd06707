"""The remediation ladder's decisions: which node is due, which step next, and the guards."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.agent_wire import NodeReport
from domain.cluster import ClusterSpec, NodePool, RemediationPolicy
from domain.maas import Machine
from domain.remediation import (
    NodeRemediation,
    ObservedNode,
    RemediationStep,
    is_due,
    next_due_at,
    next_step,
    observe,
    refusal,
)


def spec(cp: int = 3, workers: int = 4, **policy: object) -> ClusterSpec:
    return ClusterSpec(
        name="demo",
        control_plane=NodePool(name="control-plane", count=cp),
        worker_pools=[
            NodePool(
                name="workers", count=workers, remediation=RemediationPolicy.model_validate(policy)
            )
        ],
    )


def machines(s: ClusterSpec) -> list[Machine]:
    return [
        Machine(system_id=f"{p.name[0]}{i}", hostname=f"{p.name}-{i}", pool=p.name)
        for p in s.pools
        for i in range(p.count)
    ]


def entry(m: Machine, since: float = 0.0, **kw: object) -> NodeRemediation:
    return NodeRemediation.model_validate(
        {"hostname": m.hostname, "system_id": m.system_id, "pool": m.pool, "unhealthy_since": since}
        | kw
    )


def test_a_silent_node_counts_as_unhealthy_since_its_agent_was_last_heard() -> None:
    s = spec(unhealthy_seconds=60)
    ms = machines(s)
    nodes = [
        ObservedNode(hostname=m.hostname, ready=True)
        if m.hostname != "workers-2"
        else ObservedNode(hostname=m.hostname, ready=False, silent_since=100.0)
        for m in ms
    ]
    tracked, _ = observe([], ms, nodes, agent_silent=False, now=130.0)
    [silent] = tracked
    assert (silent.hostname, silent.unhealthy_since, silent.agent_silent) == (
        "workers-2",
        100.0,
        True,
    )
    # The pool's threshold runs from the last heartbeat, not from when silence was noticed.
    assert not is_due(silent, s, 159.0) and is_due(silent, s, 160.0)
    # A silent_since ahead of the workflow's clock (another host's clock) never counts.
    ahead = [n.model_copy(update={"silent_since": 500.0}) for n in nodes if not n.ready]
    [late] = observe([], ms, ahead, agent_silent=False, now=130.0)[0]
    assert late.unhealthy_since == 130.0


def test_observe_tracks_not_ready_and_drops_recovered() -> None:
    ms = machines(spec())
    nodes = [NodeReport(hostname=m.hostname, ready=m.hostname != "workers-1") for m in ms]
    tracked, recovered = observe([], ms, nodes, agent_silent=False, now=10.0)
    assert [(t.hostname, t.unhealthy_since) for t in tracked] == [("workers-1", 10.0)]
    assert recovered == []
    # Still NotReady later: the first time it was seen stays.
    again, _ = observe(tracked, ms, nodes, agent_silent=False, now=50.0)
    assert again[0].unhealthy_since == 10.0
    ready = [NodeReport(hostname=m.hostname, ready=True) for m in ms]
    tracked, recovered = observe(again, ms, ready, agent_silent=False, now=60.0)
    assert tracked == [] and [r.hostname for r in recovered] == ["workers-1"]


def test_silent_agent_makes_reported_nodes_unhealthy_and_unreported_ones_wait() -> None:
    ms = machines(spec(cp=1, workers=2))
    nodes = [NodeReport(hostname=ms[0].hostname, ready=True)]
    tracked, _ = observe([], ms, nodes, agent_silent=True, now=1.0)
    assert [t.hostname for t in tracked] == [ms[0].hostname]


def test_ladder_order_and_due_times() -> None:
    s = spec(unhealthy_seconds=60)
    w = machines(s)[3]
    e = entry(w, since=100.0)
    assert next_step(e) == RemediationStep.POWER_CYCLE
    assert not is_due(e, s, 159.0) and is_due(e, s, 160.0)
    e.step, e.step_at = RemediationStep.POWER_CYCLE, 200.0
    assert next_step(e) == RemediationStep.REDEPLOY
    assert not is_due(e, s, 259.0) and is_due(e, s, 260.0)
    assert next_due_at([e], s) == 260.0
    e.step = RemediationStep.REDEPLOY
    assert next_step(e) == RemediationStep.REPLACE
    e.step = RemediationStep.REPLACE
    assert next_step(e) is None and not is_due(e, s, 10_000.0)
    assert next_due_at([e], s) is None


def test_off_switches() -> None:
    s = spec(enabled=False)
    ms = machines(s)
    assert "remediation.enabled: false" in (refusal(entry(ms[3]), [], s, ms) or "")
    s = spec().model_copy(update={"remediation_enabled": False})
    assert "remediation_enabled: false" in (refusal(entry(ms[3]), [], s, ms) or "")


@pytest.mark.parametrize(("limit", "allowed"), [("1", 1), ("2", 2), ("50%", 2), ("10%", 1)])
def test_max_in_remediation(limit: str, allowed: int) -> None:
    s = spec(workers=4, max_in_remediation=limit)
    ms = [m for m in machines(s) if m.pool == "workers"]
    tracked = [entry(m) for m in ms]
    for t in tracked[:allowed]:
        t.step = RemediationStep.POWER_CYCLE
    all_ms = machines(s)
    assert refusal(tracked[allowed], tracked, s, all_ms) is not None
    # One already in remediation goes on up its ladder.
    assert refusal(tracked[0], tracked, s, all_ms) is None
    tracked[0].step = None
    assert refusal(tracked[allowed], tracked, s, all_ms) is None


def test_etcd_quorum_guard() -> None:
    s = spec(cp=3)
    ms = machines(s)
    cps = [m for m in ms if m.pool == "control-plane"]
    one = [entry(cps[0])]
    assert refusal(one[0], one, s, ms) is None
    two = [entry(cps[0]), entry(cps[1])]
    assert "etcd quorum" in (refusal(two[0], two, s, ms) or "")
    single = spec(cp=1)
    sm = machines(single)
    only = [entry(sm[0])]
    assert "etcd quorum" in (refusal(only[0], only, single, sm) or "")


def test_policy_validation_names_the_field() -> None:
    assert RemediationPolicy.model_validate({"max_in_remediation": 3}).max_in_remediation == "3"
    for bad in ("0", "-1", "150x", "%"):
        with pytest.raises(ValidationError, match="max_in_remediation"):
            RemediationPolicy(max_in_remediation=bad)
    with pytest.raises(ValidationError, match="unhealthy_seconds"):
        RemediationPolicy(unhealthy_seconds=0)
