"""The management signal carries what changed: its size does not grow with the cluster."""

from __future__ import annotations

from api.agent_reports import aggregate, node_state
from domain.agent_wire import AgentHeartbeat, NodeReport
from domain.text import MAX_HOSTNAME, MAX_MESSAGE

SIGNAL_LIMIT_BYTES = 8 * 1024


def state(i: int, ready: bool = True) -> dict[str, object]:
    name = f"n{i:03d}-" + "x" * (MAX_HOSTNAME - 5)
    beat = AgentHeartbeat(
        node=NodeReport(hostname=name, system_id=f"s{i}", ready=ready, kubelet_version="v1.30.4"),
        message="m" * MAX_MESSAGE,
    )
    return node_state(beat)


def test_a_report_of_a_500_node_cluster_is_a_few_kilobytes() -> None:
    others = [state(i) for i in range(499)]
    report = aggregate(others, [state(499, ready=False)], "v1.30.4")
    size = len(report.model_dump_json())
    assert size < SIGNAL_LIMIT_BYTES, size
    assert [n.system_id for n in report.nodes] == ["s499"]
    assert report.kubernetes_version == "v1.30.4" and report.healthy


def test_a_node_marked_silent_reaches_the_workflow_as_silent() -> None:
    from store.node_silence import silent_state
    from store.types import utcnow

    since = utcnow()
    report = aggregate([state(1)], [silent_state(state(2), since)], "v1.30.4")
    [node] = report.nodes
    assert not node.ready and node.silent_since == since.timestamp()
    # An agent cannot claim it: what it sends is a plain NodeReport, stored as such.
    assert "silent_since" not in state(3)["node"]  # type: ignore[operator]
