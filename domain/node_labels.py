"""Kubernetes node labels and taints a pool puts on its nodes at join, validated as
Kubernetes validates them, so a spec the API accepts never stops a kubelet from starting.

A kubelet registers its node with `--node-labels`; the NodeRestriction admission plugin (on
in every kubeadm cluster) refuses labels in the kubernetes.io and k8s.io namespaces except
the few in KUBELET_LABELS / KUBELET_LABEL_NAMESPACES, and the kubelet then exits. We refuse
those keys in the spec instead, naming the allowed ones.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.text import no_control_characters

ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_LABELS = 32
MAX_TAINTS = 16

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_NAME = 63
MAX_PREFIX = 253

# k8s.io/kubernetes pkg/kubelet/apis/well_known_labels.go: what a kubelet may set on itself.
KUBELET_LABELS = (
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
RESTRICTED_NAMESPACES = ("kubernetes.io", "k8s.io")


def _in_namespace(prefix: str, namespace: str) -> bool:
    return prefix == namespace or prefix.endswith("." + namespace)


def qualified_name(key: str) -> str:
    """`key` if it is a Kubernetes qualified name (`[prefix/]name`), else a ValueError."""
    no_control_characters(key)
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        raise ValueError(f"{key!r} has an empty prefix before '/'; remove the '/' or name one")
    if slash and (len(prefix) > MAX_PREFIX or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(
            f"{key!r}: the prefix {prefix!r} must be a lowercase DNS subdomain of at most "
            f"{MAX_PREFIX} characters, e.g. example.com"
        )
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise ValueError(
            f"{key!r}: the name {name!r} must be 1-{MAX_NAME} characters of letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return key


def label_key(key: str) -> str:
    """A label key a kubelet may set on its own node."""
    qualified_name(key)
    if key == ZONE_LABEL:
        raise ValueError(
            f"{ZONE_LABEL} is set by metalgate from the machine's MAAS zone; list the zones "
            "in constraints.zones instead"
        )
    prefix = key.rpartition("/")[0]
    restricted = any(_in_namespace(prefix, ns) for ns in RESTRICTED_NAMESPACES)
    allowed = key in KUBELET_LABELS or any(
        _in_namespace(prefix, ns) for ns in KUBELET_LABEL_NAMESPACES
    )
    if restricted and not allowed:
        raise ValueError(
            f"{key!r} is in a kubernetes.io / k8s.io namespace the NodeRestriction admission "
            "plugin forbids a kubelet to set on itself; use your own prefix (e.g. "
            f"example.com/{key.rpartition('/')[2]}), or one of "
            f"{', '.join(k for k in KUBELET_LABELS if k != ZONE_LABEL)}, or a key under "
            f"{' or '.join(ns + '/' for ns in KUBELET_LABEL_NAMESPACES)}"
        )
    return key


def label_value(value: str) -> str:
    """A label (or taint) value: empty, or a name of at most 63 characters."""
    no_control_characters(value)
    if value and (len(value) > MAX_NAME or not _NAME.fullmatch(value)):
        raise ValueError(
            f"{value!r} must be empty or 1-{MAX_NAME} characters of letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )
    return value


# Bounded before the validators run, so a hostile megabyte is refused by length first.
LabelKey = Annotated[str, Field(max_length=MAX_PREFIX + 1 + MAX_NAME), AfterValidator(label_key)]
LabelValue = Annotated[str, Field(max_length=MAX_NAME), AfterValidator(label_value)]
TaintKey = Annotated[
    str, Field(max_length=MAX_PREFIX + 1 + MAX_NAME), AfterValidator(qualified_name)
]


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Taint(BaseModel):
    """A taint the node registers with (kubeadm's nodeRegistration.taints)."""

    model_config = ConfigDict(extra="forbid")

    key: TaintKey
    value: LabelValue = ""
    effect: TaintEffect


# kubeadm's own taint on control-plane nodes, which it leaves off once any taint is given.
CONTROL_PLANE_TAINT = Taint(key="node-role.kubernetes.io/control-plane", effect="NoSchedule")


def node_labels_arg(labels: dict[str, str]) -> str:
    """The kubelet's `--node-labels` value, in key order (stable user data)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
