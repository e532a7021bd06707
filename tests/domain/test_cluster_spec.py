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


# --- failure domains, labels and taints ------------------------------------------------------


def test_one_zone_as_stored_before_zones_reads_as_a_list_of_one() -> None:
    # Stored specs and recorded workflow inputs name one zone as `zone` (null when none).
    assert MachineConstraints.model_validate({"zone": "az1"}).zones == ["az1"]
    assert MachineConstraints.model_validate({"zone": None}).zones == []
    dumped = MachineConstraints(zones=["az1", "az2"]).model_dump()
    assert "zone" not in dumped and MachineConstraints.model_validate(dumped).zones == [
        "az1",
        "az2",
    ]


def test_zone_and_zones_together_are_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="give zone or zones, not both"):
        MachineConstraints.model_validate({"zone": "az1", "zones": ["az2"]})


@pytest.mark.parametrize(
    ("zones", "field", "words"),
    [
        (["az1", "az1"], "zones", "list each zone once"),
        ([f"z{i}" for i in range(17)], "zones", "at most 16"),
        (["AZ_1"], "zones.0", "should match pattern"),
        (["a" * 64], "zones.0", "at most 63"),
    ],
)
def test_bad_zones_name_the_field(zones: list[str], field: str, words: str) -> None:
    text = error_text(
        spec(worker_pools=[{"name": "w", "count": 1, "constraints": {"zones": zones}}])
    )
    assert f"worker_pools.0.constraints.{field}" in text and words in text


def test_labels_and_taints_a_kubelet_may_register_with() -> None:
    pool = NodePool(
        name="gpu",
        count=1,
        labels={"example.com/gpu": "a100", "node.kubernetes.io/role": "gpu", "tier": ""},
        taints=[{"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}],
    )
    assert pool.labels["tier"] == "" and pool.taints[0].effect == "NoSchedule"


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"node-role.kubernetes.io/worker": ""}, "NodeRestriction"),
        ({"example.k8s.io/x": "y"}, "NodeRestriction"),
        ({"topology.kubernetes.io/zone": "az1"}, "constraints.zones"),
        ({"Example.com/x": "y"}, "lowercase DNS subdomain"),
        ({"/x": "y"}, "empty prefix"),
        ({"-x": "y"}, "starting and ending with a letter or digit"),
        ({"x": "a" * 64}, "at most 63"),
        ({"x": "a\nb"}, "control character"),
        ({"x": "a,b=c"}, "letters, digits"),
        ({f"k{i}": "v" for i in range(33)}, "at most 32"),
    ],
)
def test_bad_labels_name_the_field_and_the_fix(labels: dict[str, str], words: str) -> None:
    text = error_text(spec(worker_pools=[{"name": "w", "count": 1, "labels": labels}]))
    assert "worker_pools.0.labels" in text and words in text


def test_the_restricted_namespace_error_names_the_allowed_keys() -> None:
    text = error_text(
        spec(worker_pools=[{"name": "w", "count": 1, "labels": {"kubernetes.io/role": "x"}}])
    )
    assert "kubernetes.io/arch" in text and "node.kubernetes.io/" in text


@pytest.mark.parametrize(
    ("taints", "field", "words"),
    [
        ([{"key": "a", "effect": "Sometimes"}], "taints.0.effect", "NoSchedule"),
        ([{"key": "a b", "effect": "NoSchedule"}], "taints.0.key", "letters, digits"),
        ([{"key": "a", "value": "x" * 64, "effect": "NoExecute"}], "taints.0.value", "at most 63"),
        (
            [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}],
            "taints",
            "one per key and effect",
        ),
    ],
)
def test_bad_taints_name_the_field(taints: list[dict[str, str]], field: str, words: str) -> None:
    text = error_text(spec(worker_pools=[{"name": "w", "count": 1, "taints": taints}]))
    assert f"worker_pools.0.{field}" in text and words in text
