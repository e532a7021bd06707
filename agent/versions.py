"""Kubernetes versions as kubeadm names them: `v1.30.2`."""

from __future__ import annotations

import re

VERSION_PATTERN = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


def parse_version(version: str) -> tuple[int, int, int]:
    """`v1.30.2` -> (1, 30, 2); ValueError names the expected form."""
    match = VERSION_PATTERN.fullmatch(version)
    if match is None:
        raise ValueError(f"kubernetes version {version!r} is not of the form v1.30.2")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def package_version(version: str) -> str:
    """The Debian package version of the pkgs.k8s.io repositories: `v1.30.2` -> `1.30.2-*`."""
    major, minor, patch = parse_version(version)
    return f"{major}.{minor}.{patch}-*"
