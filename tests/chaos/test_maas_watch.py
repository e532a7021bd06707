"""The chaos checker itself: it must flag a machine marked for one cluster while MAAS gave it
to another, and must not flag a machine that went back to Ready in between."""

from __future__ import annotations

from tests.chaos.maas_watch import MaasWatch


def machine(system_id: str, cluster: str) -> dict[str, object]:
    owner_data = {"metalgate_cluster": cluster} if cluster else {}
    return {"system_id": system_id, "status_name": "Deployed", "owner_data": owner_data}


def allocated(watch: MaasWatch, system_id: str, cluster: str) -> None:
    watch._apply(system_id, f"From 'Ready' to 'Allocated': metalgate cluster {cluster} request r")


def test_handover_through_ready_is_fine() -> None:
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    allocated(watch, "m1", "A")
    watch.observe([machine("m1", "A")])
    watch._apply("m1", "From 'Disk erasing' to 'Ready'")
    allocated(watch, "m1", "B")
    watch.observe([machine("m1", "B")])
    assert not watch.violations
    assert watch.owners_seen["m1"] == {"A", "B"}


def test_mark_of_another_cluster_is_a_violation_once() -> None:
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    allocated(watch, "m1", "A")
    watch.observe([machine("m1", "A")])
    watch.observe([machine("m1", "B")])
    watch.observe([machine("m1", "B")])
    assert [str(v) for v in watch.violations] == [
        "m1: MAAS allocated it to A but owner_data names B"
    ]


def test_snapshot_older_than_the_log_is_not_a_violation() -> None:
    """The log read after a snapshot may already hold the release of what it shows."""
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    allocated(watch, "m1", "A")
    watch._apply("m1", "From 'Disk erasing' to 'Ready'")
    watch.observe([machine("m1", "A")])
    assert not watch.violations
