from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.cluster import ClusterSpec, MachineConstraints, NodePool, version_key


def spec(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "edge-1",
        "control_plane": {"name": "cp", "count": 1},
        "worker_pools": [{"name": "workers", "count": 2}],
    }
    return {**base, **overrides}


def error_text(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        ClusterSpec.model_validate(data)
    return str(info.value)


def test_a_three_node_cluster_is_valid() -> None:
    cluster = ClusterSpec.model_validate(spec())
    assert cluster.node_count == 3
    assert [p.name for p in cluster.pools] == ["cp", "workers"]
    assert cluster.pool("workers") is not None and cluster.pool("nope") is None


def test_even_control_plane_is_refused_with_the_fix() -> None:
    assert "must be 1, 3 or 5" in error_text(spec(control_plane={"name": "cp", "count": 2}))


def test_duplicate_pool_names_are_named() -> None:
    text = error_text(spec(worker_pools=[{"name": "cp", "count": 1}]))
    assert "rename ['cp']" in text


def test_names_must_be_dns_labels() -> None:
    assert "name" in error_text(spec(name="Bad_Name"))


def test_oversized_pool_is_refused() -> None:
    assert "worker_pools.0.count" in error_text(spec(worker_pools=[{"name": "w", "count": 1000}]))


def test_unknown_fields_are_refused() -> None:
    assert "colour" in error_text(spec(colour="blue"))


def test_constraints_refuse_a_tag_both_wanted_and_excluded() -> None:
    with pytest.raises(ValidationError, match="both required and excluded"):
        MachineConstraints(tags=["gpu"], not_tags=["gpu"])


def test_zero_worker_pool_is_allowed() -> None:
    pool = NodePool(name="spare", count=0)
    assert ClusterSpec(name="a", worker_pools=[pool]).node_count == 1


def test_version_key_orders_versions() -> None:
    assert version_key("v1.30.4") < version_key("v1.31.0") < version_key("v1.31.10")
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        version_key("1.30")
