"""A node whose agent went quiet is marked silent in the store and queued for its workflow."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from domain.maas import Machine
from store.agent_outbox import claim, fingerprint, record_change, settle
from store.db import Database
from store.models import AgentNode, Cluster, Project
from store.node_silence import mark_silent_nodes, touch_nodes
from store.types import utcnow

MACHINES = [
    Machine(system_id="s1", hostname="n1", pool="control-plane"),
    Machine(system_id="s2", hostname="n2", pool="workers"),
]
WATCHED = ["Running"]


def live(hostname: str) -> dict[str, object]:
    return {
        "node": {"hostname": hostname, "system_id": "", "role": "worker", "ready": True},
        "control_plane_ready": True,
        "healthy": True,
        "message": "",
    }


async def _cluster(database: Database, cluster_id: str = "cl-1", **values: object) -> str:
    async with database.sessions.begin() as session:
        if await session.get(Project, "prj-s") is None:
            session.add(Project(id="prj-s", name="s"))
            await session.flush()
        session.add(
            Cluster(
                id=cluster_id,
                project_id="prj-s",
                name=cluster_id,
                active_name=cluster_id,
                cloud_account_id="acc-1",
                gateway_id="system",
                spec={},
                phase="Running",
                kubernetes_version="v1.30.4",
                machines=[m.model_dump(mode="json") for m in MACHINES],
                **values,
            )
        )
    return cluster_id


async def _report(
    database: Database, cluster_id: str, hostname: str, at_seconds_ago: float
) -> None:
    state = live(hostname)
    async with database.sessions.begin() as session:
        await record_change(
            session,
            cluster_id=cluster_id,
            hostname=hostname,
            fingerprint=fingerprint(state),
            state=state,
            now=utcnow() - timedelta(seconds=at_seconds_ago),
        )


async def _delivered(database: Database) -> None:
    for report in await claim(database.sessions, limit=100, lease_seconds=30):
        await settle(database.sessions, delivered=[report])


async def test_a_quiet_node_is_marked_not_ready_and_queued_once(database: Database) -> None:
    cluster_id = await _cluster(database)
    await _report(database, cluster_id, "n1", at_seconds_ago=600)
    await _report(database, cluster_id, "n2", at_seconds_ago=1)
    await _delivered(database)
    cutoff = utcnow() - timedelta(seconds=60)

    marked = await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED)

    assert [(m.cluster_id, m.hostname, m.queued) for m in marked] == [(cluster_id, "n1", True)]
    [report] = await claim(database.sessions, limit=10, lease_seconds=30)
    [changed] = report.changed
    assert changed.hostname == "n1"
    assert changed.state["node"]["ready"] is False
    assert changed.state["node"]["silent_since"] == marked[0].last_seen_at.timestamp()
    assert "agent silent" in changed.state["message"]
    await settle(database.sessions, delivered=[report])
    assert await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED) == []


async def test_the_next_report_of_the_node_clears_its_silence(database: Database) -> None:
    cluster_id = await _cluster(database)
    await _report(database, cluster_id, "n1", at_seconds_ago=600)
    cutoff = utcnow() - timedelta(seconds=60)
    await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED)
    await _report(database, cluster_id, "n1", at_seconds_ago=0)
    async with database.sessions() as session:
        row = await session.get(AgentNode, (cluster_id, "n1"))
    assert row is not None and row.silent is False and "silent_since" not in row.report["node"]


async def test_heartbeats_keep_a_node_from_counting_as_silent(database: Database) -> None:
    cluster_id = await _cluster(database)
    await _report(database, cluster_id, "n1", at_seconds_ago=600)
    await touch_nodes(database.sessions, {(cluster_id, "n1"): utcnow()})
    # A late flush never moves last-seen backwards.
    await touch_nodes(database.sessions, {(cluster_id, "n1"): utcnow() - timedelta(hours=1)})
    cutoff = utcnow() - timedelta(seconds=60)
    assert await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED) == []


async def test_nodes_of_a_silent_or_unwatched_cluster_are_left_alone(database: Database) -> None:
    silent = await _cluster(database, "cl-silent", silent=True)
    creating = await _cluster(database, "cl-creating")
    async with database.sessions.begin() as session:
        await session.execute(
            update(Cluster).where(Cluster.id == creating).values(phase="DeployingOS")
        )
    for cluster_id in (silent, creating):
        await _report(database, cluster_id, "n1", at_seconds_ago=600)
    cutoff = utcnow() - timedelta(seconds=60)
    assert await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED) == []


async def test_a_node_no_longer_among_the_machines_is_marked_but_not_queued(
    database: Database,
) -> None:
    cluster_id = await _cluster(database)
    await _report(database, cluster_id, "gone", at_seconds_ago=600)
    await _delivered(database)
    cutoff = utcnow() - timedelta(seconds=60)
    marked = await mark_silent_nodes(database.sessions, cutoff=cutoff, phases=WATCHED)
    assert [(m.hostname, m.queued) for m in marked] == [("gone", False)]
    assert await claim(database.sessions, limit=10, lease_seconds=30) == []
    async with database.sessions() as session:
        silent = (await session.scalars(select(AgentNode.silent))).all()
    assert list(silent) == [True]
