"""Kubernetes versions: the one validation used by create, upgrade and stored workflow state.

A version is exactly `v1.<minor>.<patch>` (full match: a trailing newline is refused). Which
versions a cluster may run is a setting (`kubernetes_versions`), checked where a user asks for
one; stored state is checked for its form only, so that narrowing the setting never makes a
running cluster's state undecodable.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field

_VERSION = re.compile(r"v1\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,3})")
MAX_VERSION_LENGTH = 16

# The newest patch of each minor metalgate supports; any earlier patch of a listed minor is
# supported too.
DEFAULT_KUBERNETES_VERSIONS = ("v1.29.15", "v1.30.14", "v1.31.14", "v1.32.10", "v1.33.6")


class KubeVersion(NamedTuple):
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"v1.{self.minor}.{self.patch}"


def parse_version(text: str) -> KubeVersion:
    """The (minor, patch) of `text`, or a ValueError saying what a version looks like."""
    match = _VERSION.fullmatch(text) if len(text) <= MAX_VERSION_LENGTH else None
    if match is None:
        raise ValueError(
            f"{text[:40]!r} is not a Kubernetes version; write it as v1.<minor>.<patch>, "
            "e.g. v1.30.4, with nothing before or after it"
        )
    return KubeVersion(int(match.group(1)), int(match.group(2)))


def _well_formed(text: str) -> str:
    parse_version(text)
    return text


def _empty_or_well_formed(text: str) -> str:
    return text and _well_formed(text)


KubernetesVersion = Annotated[
    str,
    Field(max_length=MAX_VERSION_LENGTH, description="v1.<minor>.<patch>, e.g. v1.30.4"),
    AfterValidator(_well_formed),
]
# What an agent reports before its kubelet runs: empty, or a version.
KubeletVersion = Annotated[
    str,
    Field(max_length=MAX_VERSION_LENGTH, description="empty, or v1.<minor>.<patch>"),
    AfterValidator(_empty_or_well_formed),
]


class SupportedVersions:
    """The versions clusters may run: each listed minor up to its listed patch."""

    def __init__(self, newest_patches: tuple[str, ...] | list[str]) -> None:
        self._max_patch = {v.minor: v.patch for v in map(parse_version, newest_patches)}
        if not self._max_patch:
            raise ValueError("the list of supported Kubernetes versions is empty")

    def describe(self) -> str:
        return ", ".join(
            f"v1.{minor}.0-{patch}" for minor, patch in sorted(self._max_patch.items())
        )

    def problem(self, version: str) -> str | None:
        """Why `version` cannot be asked for, or None if it is supported."""
        try:
            wanted = parse_version(version)
        except ValueError as error:
            return str(error)
        newest = self._max_patch.get(wanted.minor)
        if newest is None or wanted.patch > newest:
            return f"{version} is not a supported version; pick one of {self.describe()}"
        return None

    def upgrade_problem(self, current: str, wanted: str) -> str | None:
        """Why a cluster at `current` cannot go to `wanted`: one minor at a time, never down.

        The same version is a refusal too: there is nothing to do.
        """
        problem = self.problem(wanted)
        if problem is not None:
            return problem
        have, want = parse_version(current), parse_version(wanted)
        if want == have:
            return f"the cluster already runs {current}; nothing to upgrade"
        if want < have:
            return f"{wanted} is older than the running {current}; downgrades are not supported"
        if want.minor > have.minor + 1:
            return (
                f"{wanted} skips a minor version: from {current} upgrade to "
                f"v1.{have.minor + 1}.x first (one minor at a time)"
            )
        return None
