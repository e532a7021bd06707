"""One validation for Kubernetes versions: form (full match), supported set, upgrade steps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.cluster import ClusterSpec, version_key
from domain.versions import SupportedVersions, parse_version
from workflows.contracts import UpgradeRequest

SUPPORTED = SupportedVersions(["v1.30.14", "v1.31.14", "v1.32.10", "v1.33.6"])


@pytest.mark.parametrize(
    "text", ["v1.99.1\n", "v1.30.4 ", " v1.30.4", "1.30.4", "v1.30", "v2.0.0", "v1.030.4", ""]
)
def test_anything_but_v1_minor_patch_is_refused_everywhere(text: str) -> None:
    with pytest.raises(ValueError, match=r"v1\.<minor>\.<patch>"):
        parse_version(text)
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        version_key(text)
    with pytest.raises(ValidationError, match="kubernetes_version"):
        ClusterSpec(name="a", kubernetes_version=text)
    with pytest.raises(ValidationError, match="kubernetes_version"):
        UpgradeRequest(kubernetes_version=text)


def test_supported_set_is_each_minor_up_to_its_newest_patch() -> None:
    assert SUPPORTED.problem("v1.31.0") is None
    assert SUPPORTED.problem("v1.31.14") is None
    assert "not a supported version" in (SUPPORTED.problem("v1.31.15") or "")
    assert "not a supported version" in (SUPPORTED.problem("v1.99.999") or "")
    assert "v1.30.0-14" in (SUPPORTED.problem("v1.29.1") or "")


def test_upgrades_go_one_minor_at_a_time_and_never_down() -> None:
    assert SUPPORTED.upgrade_problem("v1.30.4", "v1.30.5") is None
    assert SUPPORTED.upgrade_problem("v1.30.4", "v1.31.2") is None
    assert "skips a minor" in (SUPPORTED.upgrade_problem("v1.31.0", "v1.33.0") or "")
    assert "downgrades" in (SUPPORTED.upgrade_problem("v1.31.2", "v1.31.1") or "")
    assert "downgrades" in (SUPPORTED.upgrade_problem("v1.31.2", "v1.30.9") or "")
    assert "already runs" in (SUPPORTED.upgrade_problem("v1.31.2", "v1.31.2") or "")
    assert "not a supported" in (SUPPORTED.upgrade_problem("v1.32.0", "v1.33.99") or "")


def test_an_empty_supported_list_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        SupportedVersions([])
