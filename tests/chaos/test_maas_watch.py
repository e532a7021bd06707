"""The chaos checker itself: it must flag a machine marked for one cluster while MAAS had given
it to another, and must not flag one that went back to Ready, however the poll interleaves."""

from __future__ import annotations

from tests.chaos.maas_watch import MaasWatch

READY = "From 'Disk erasing' to 'Ready'"


def allocation(cluster: str) -> str:
    return f"From 'Ready' to 'Allocated': metalgate cluster {cluster} request r pool cp"


def machine(cluster: str) -> dict[str, object]:
    owner_data = {"metalgate_cluster": cluster} if cluster else {}
    return {"system_id": "m1", "status_name": "Deployed", "owner_data": owner_data}


def poll(watch: MaasWatch, before: list[str], snapshot: str, after: list[str]) -> None:
    """One poll as `MaasWatch.poll` does it: log, machines, log."""
    for description in before:
        watch._apply("m1", description)
    holders = dict(watch.allocated_to)
    given = set()
    for description in after:
        if cluster := watch._apply("m1", description):
            given.add(("m1", cluster))
    watch.observe([machine(snapshot)], holders, given)


def test_handover_through_ready_is_fine() -> None:
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    poll(watch, [allocation("A")], "A", [])
    poll(watch, [READY], "", [allocation("B")])
    poll(watch, [], "B", [])
    assert not watch.violations
    assert watch.owners_seen["m1"] == {"A", "B"}


def test_slow_poll_spanning_a_handover_is_fine() -> None:
    """The snapshot shows A; by the time the log is read again, B already has the machine."""
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    poll(watch, [allocation("A")], "A", [])
    poll(watch, [], "A", [READY, allocation("B")])
    poll(watch, [], "B", [])
    assert not watch.violations


def test_mark_of_another_cluster_is_a_violation_once() -> None:
    watch = MaasWatch("http://unused/MAAS/", "a:b:c")
    poll(watch, [allocation("A")], "A", [])
    poll(watch, [], "B", [])
    poll(watch, [], "B", [])
    assert [str(v) for v in watch.violations] == [
        "m1: MAAS allocated it to A but owner_data names B"
    ]
