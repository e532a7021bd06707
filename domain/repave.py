"""A rolling repave's decisions, as pure functions over the pool and the management state.

A repave replaces a pool's nodes batch by batch. Expand-first takes up to `max_surge` fresh
machines, lets them join, then takes the old nodes out; contract-first takes up to
`max_unavailable` old nodes out first. `auto` picks expand-first while MAAS has free machines
that match the pool. Control-plane nodes go one at a time, and only while etcd keeps quorum.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from domain.agent_wire import NodeReport
from domain.cluster import NodePool, RepaveStrategy
from domain.maas import Machine
from domain.remediation import quorum


class Batch(BaseModel):
    """The next nodes to replace together, how, and why (for the cluster's events)."""

    strategy: RepaveStrategy
    size: int
    why: str


def asks_for_free_machines(pool: NodePool) -> bool:
    """Whether the next batch depends on how many free machines match the pool: auto picks
    its strategy by it, contract-first whether a node gets a fresh machine or its own again."""
    return pool.repave.strategy != RepaveStrategy.EXPAND_FIRST


def next_batch(pool: NodePool, *, control_plane: bool, remaining: int, free: int) -> Batch | str:
    """The next batch of a pool's repave, or why none may run; `free` is the number of free
    machines MAAS says match the pool (0 when not asked)."""
    policy = pool.repave
    # Control-plane nodes go one at a time whatever the pool says, so etcd loses one at most.
    surge = min(1, policy.max_surge) if control_plane else policy.max_surge
    unavailable = min(1, policy.max_unavailable) if control_plane else policy.max_unavailable
    one = " (control-plane nodes go one at a time)" if control_plane else ""
    if policy.strategy == RepaveStrategy.EXPAND_FIRST:
        why = f"strategy expand-first, max_surge {policy.max_surge}{one}"
        return Batch(strategy=RepaveStrategy.EXPAND_FIRST, size=min(surge, remaining), why=why)
    if policy.strategy == RepaveStrategy.CONTRACT_FIRST:
        why = f"strategy contract-first, max_unavailable {policy.max_unavailable}{one}"
        return Batch(
            strategy=RepaveStrategy.CONTRACT_FIRST, size=min(unavailable, remaining), why=why
        )
    if free > 0 and surge > 0:
        return Batch(
            strategy=RepaveStrategy.EXPAND_FIRST,
            size=min(surge, remaining, free),
            why=f"auto: {free} free machine(s) match pool {pool.name}, max_surge "
            f"{policy.max_surge}{one}",
        )
    if unavailable > 0:
        return Batch(
            strategy=RepaveStrategy.CONTRACT_FIRST,
            size=min(unavailable, remaining),
            why=f"auto: no free machine matches pool {pool.name}"
            + (" (max_surge 0)" if free and not surge else "")
            + f", max_unavailable {policy.max_unavailable}{one}",
        )
    return (
        f"no free machine matches pool {pool.name} and repave.max_unavailable is 0: add a "
        "machine MAAS can hand the pool, or allow max_unavailable: 1"
    )


def control_plane_refusal(
    leaving: list[Machine], machines: list[Machine], nodes: Sequence[NodeReport], pool: str
) -> str | None:
    """Why taking `leaving` out of the control plane now would break etcd quorum, or None.

    Members are the pool's machines (a fresh one counts once it is recorded); a member counts
    as healthy when its agent reports it Ready.
    """
    members = [m for m in machines if m.pool == pool]
    gone = {m.system_id for m in leaving}
    ready = {n.hostname for n in nodes if n.ready}
    names = ", ".join(m.hostname for m in leaving)
    staying = [m for m in members if m.system_id not in gone]
    if not staying:
        return (
            f"{names} is the only control-plane node: it is repaved only expand-first, with a "
            f"free machine matching pool {pool} (a contract-first repave would end the cluster)"
        )
    staying_ready = sum(1 for m in staying if m.hostname in ready)
    need = quorum(len(staying))
    if staying_ready < need:
        return (
            f"etcd quorum: {staying_ready} other ready control-plane node(s), {need} of "
            f"{len(staying)} needed once {names} leaves"
        )
    ready_now = sum(1 for m in members if m.hostname in ready)
    if ready_now < quorum(len(members)):
        return (
            f"etcd quorum: {ready_now} of {len(members)} control-plane nodes ready, "
            f"{quorum(len(members))} needed to remove a member"
        )
    return None
