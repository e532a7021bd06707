"""The cluster spec a user submits, validated with errors that name the field and the fix."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
K8S_VERSION = r"^v1\.(\d{1,2})\.(\d{1,3})$"
MAX_NODES_PER_POOL = 200
MAX_NODES_PER_CLUSTER = 500

Name = Annotated[str, Field(pattern=DNS_LABEL, min_length=1, max_length=63)]
TagName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,256}$")]


class ErasePolicy(StrEnum):
    """What MAAS does to disks when a machine is released."""

    NONE = "none"
    QUICK = "quick"
    SECURE = "secure"


class MachineConstraints(BaseModel):
    """Which MAAS machines a pool may take."""

    model_config = ConfigDict(extra="forbid")

    tags: list[TagName] = Field(default_factory=list, max_length=32)
    not_tags: list[TagName] = Field(default_factory=list, max_length=32)
    zone: Name | None = None
    resource_pool: Name | None = None
    min_cpu: int = Field(default=1, ge=1, le=4096)
    min_memory_mib: int = Field(default=1024, ge=256, le=64 * 1024 * 1024)

    @model_validator(mode="after")
    def _tags_disjoint(self) -> MachineConstraints:
        both = sorted(set(self.tags) & set(self.not_tags))
        if both:
            raise ValueError(f"tags {both} are both required and excluded; keep them in one list")
        return self


class NodePool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    count: int = Field(ge=0, le=MAX_NODES_PER_POOL)
    constraints: MachineConstraints = Field(default_factory=MachineConstraints)


class ClusterSpec(BaseModel):
    """Desired shape of a cluster."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kubernetes_version: str = Field(default="v1.30.4", pattern=K8S_VERSION)
    control_plane: NodePool = Field(default_factory=lambda: NodePool(name="control-plane", count=1))
    worker_pools: list[NodePool] = Field(default_factory=list, max_length=16)
    distro_series: str = Field(default="jammy", pattern=r"^[a-z]{2,32}$")
    hwe_kernel: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,64}$")
    erase_policy: ErasePolicy = ErasePolicy.QUICK

    @field_validator("control_plane")
    @classmethod
    def _odd_control_plane(cls, pool: NodePool) -> NodePool:
        if pool.count not in (1, 3, 5):
            raise ValueError("control_plane.count must be 1, 3 or 5 (etcd needs an odd quorum)")
        return pool

    @model_validator(mode="after")
    def _pools_consistent(self) -> ClusterSpec:
        names = [self.control_plane.name, *(p.name for p in self.worker_pools)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique; rename {dupes}")
        if self.node_count > MAX_NODES_PER_CLUSTER:
            raise ValueError(
                f"a cluster has at most {MAX_NODES_PER_CLUSTER} nodes; this spec asks "
                f"{self.node_count}"
            )
        return self

    @property
    def pools(self) -> list[NodePool]:
        return [self.control_plane, *self.worker_pools]

    @property
    def node_count(self) -> int:
        return sum(p.count for p in self.pools)

    def pool(self, name: str) -> NodePool | None:
        return next((p for p in self.pools if p.name == name), None)


def version_key(version: str) -> tuple[int, int]:
    """Sortable (minor, patch) of a `v1.M.P` Kubernetes version."""
    match = re.match(K8S_VERSION, version)
    if match is None:
        raise ValueError(f"{version!r} is not a Kubernetes version like v1.30.4")
    return int(match.group(1)), int(match.group(2))
