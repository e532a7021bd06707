"""The cluster spec a user submits, validated with errors that name the field and the fix."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.node_labels import MAX_LABELS, MAX_TAINTS, LabelKey, LabelValue, Taint
from domain.versions import KubernetesVersion, parse_version

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
MAX_NODES_PER_POOL = 200
MAX_NODES_PER_CLUSTER = 500
MAX_ZONES = 16

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
    zones: list[Name] = Field(
        default_factory=list,
        max_length=MAX_ZONES,
        description="MAAS zones the pool's machines come from, its failure domains: "
        "control-plane nodes spread over them, workers balance across them; empty: any zone",
    )
    resource_pool: Name | None = None
    min_cpu: int = Field(default=1, ge=1, le=4096)
    min_memory_mib: int = Field(default=1024, ge=256, le=64 * 1024 * 1024)

    @model_validator(mode="before")
    @classmethod
    def _one_zone_is_a_list_of_one(cls, data: object) -> object:
        # `zone: az1` is how specs (and recorded workflow inputs) named one zone before zones.
        if not isinstance(data, dict) or "zone" not in data:
            return data
        data = dict(data)
        zone = data.pop("zone")
        if zone is not None:
            if data.get("zones"):
                raise ValueError(
                    "constraints: give zone or zones, not both; move the zone into zones"
                )
            data["zones"] = [zone]
        return data

    @field_validator("zones")
    @classmethod
    def _zones_unique(cls, zones: list[str]) -> list[str]:
        twice = sorted({z for z in zones if zones.count(z) > 1})
        if twice:
            raise ValueError(f"zones lists {twice} more than once; list each zone once")
        return zones

    @model_validator(mode="after")
    def _tags_disjoint(self) -> MachineConstraints:
        both = sorted(set(self.tags) & set(self.not_tags))
        if both:
            raise ValueError(f"tags {both} are both required and excluded; keep them in one list")
        return self


# `ubuntu/<series>` (a MAAS-synced Ubuntu) or `custom/<name>` (an uploaded image, e.g. built
# with packer-maas with Kubernetes baked in).
IMAGE_PATTERN = r"^(ubuntu/[a-z]{2,32}|custom/[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
DEFAULT_CNI_MANIFEST = (
    "https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml"
)


# "N" nodes or "N%" of the pool (at least one node).
MAX_IN_REMEDIATION_PATTERN = r"^([1-9][0-9]{0,2})%?$"


class RemediationPolicy(BaseModel):
    """When and how far a pool's unhealthy nodes are repaired (see domain.remediation)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="false: unhealthy nodes are only reported")
    unhealthy_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="how long a node is NotReady (or silent) before the next repair step",
    )
    max_in_remediation: str = Field(
        default="1",
        pattern=MAX_IN_REMEDIATION_PATTERN,
        description='nodes of the pool in remediation at once: "N" or "N%" (at least 1)',
    )

    @field_validator("max_in_remediation", mode="before")
    @classmethod
    def _count_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def max_nodes(self, pool_size: int) -> int:
        """How many of `pool_size` nodes may be in remediation at once."""
        text = self.max_in_remediation
        if text.endswith("%"):
            return max(1, pool_size * int(text[:-1]) // 100)
        return int(text)


class RepaveStrategy(StrEnum):
    """How a repave replaces a node (see workflows.repave)."""

    AUTO = "auto"  # expand-first while a free machine matches the pool, else contract-first
    EXPAND_FIRST = "expand-first"  # the fresh machine joins before the old one leaves
    CONTRACT_FIRST = "contract-first"  # the old one leaves first (or is redeployed in place)


class RepavePolicy(BaseModel):
    """How a repave rolls over a pool: one batch of nodes at a time."""

    model_config = ConfigDict(extra="forbid")

    strategy: RepaveStrategy = RepaveStrategy.AUTO
    max_surge: int = Field(
        default=1,
        ge=0,
        le=MAX_NODES_PER_POOL,
        strict=True,
        description="expand-first: fresh machines taken at once beyond the pool's count",
    )
    max_unavailable: int = Field(
        default=1,
        ge=0,
        le=MAX_NODES_PER_POOL,
        strict=True,
        description="contract-first: nodes of the pool out at once",
    )

    @model_validator(mode="after")
    def _can_roll(self) -> RepavePolicy:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError(
                "repave.max_surge and repave.max_unavailable are both 0, so no node could ever "
                "be replaced; set max_surge: 1 (needs a spare machine) or max_unavailable: 1"
            )
        if self.strategy == RepaveStrategy.EXPAND_FIRST and self.max_surge == 0:
            raise ValueError("repave.strategy expand-first needs repave.max_surge of at least 1")
        if self.strategy == RepaveStrategy.CONTRACT_FIRST and self.max_unavailable == 0:
            raise ValueError(
                "repave.strategy contract-first needs repave.max_unavailable of at least 1"
            )
        return self


class NodePool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    count: int = Field(ge=0, le=MAX_NODES_PER_POOL)
    constraints: MachineConstraints = Field(default_factory=MachineConstraints)
    image: str | None = Field(
        default=None,
        pattern=IMAGE_PATTERN,
        description="ubuntu/<series> or custom/<name>; default ubuntu/<distro_series>",
    )
    remediation: RemediationPolicy = Field(default_factory=RemediationPolicy)
    repave: RepavePolicy = Field(default_factory=RepavePolicy)
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        description="Kubernetes labels each node registers with (topology.kubernetes.io/zone "
        "is always set, from the machine's MAAS zone)",
    )
    taints: list[Taint] = Field(
        default_factory=list,
        max_length=MAX_TAINTS,
        description="taints each node registers with; the control plane keeps kubeadm's own",
    )

    @field_validator("taints")
    @classmethod
    def _taints_unique(cls, taints: list[Taint]) -> list[Taint]:
        pairs = [(t.key, t.effect.value) for t in taints]
        twice = sorted({f"{k}:{e}" for k, e in pairs if pairs.count((k, e)) > 1})
        if twice:
            raise ValueError(f"taints {twice} appear more than once; keep one per key and effect")
        return taints


class EndpointMode(StrEnum):
    """How the API server keeps one address while control-plane nodes come and go."""

    VIP = "vip"  # an IP reserved in MAAS, announced by kube-vip on the control-plane nodes
    DNS = "dns"  # a MAAS DNS record kept pointing at the control-plane nodes
    EXTERNAL = "external"  # the operator's own load balancer


class ControlPlaneEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: EndpointMode = EndpointMode.VIP
    address: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
        description="external: the load balancer's IP or DNS name; vip: an IP to reserve",
    )
    port: int = Field(default=6443, ge=1, le=65535)

    @model_validator(mode="after")
    def _address_fits_mode(self) -> ControlPlaneEndpoint:
        if self.mode == EndpointMode.EXTERNAL and not self.address:
            raise ValueError("control_plane_endpoint.address is required with mode external")
        if self.mode == EndpointMode.DNS and self.address:
            raise ValueError(
                "control_plane_endpoint.address is chosen by metalgate with mode dns; remove it"
            )
        if self.mode == EndpointMode.VIP and self.address:
            try:
                ipaddress.IPv4Address(self.address)
            except ValueError:
                raise ValueError(
                    "control_plane_endpoint.address with mode vip must be an IPv4 address"
                ) from None
        return self


class ClusterSpec(BaseModel):
    """Desired shape of a cluster."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kubernetes_version: KubernetesVersion = "v1.30.4"
    control_plane: NodePool = Field(default_factory=lambda: NodePool(name="control-plane", count=1))
    worker_pools: list[NodePool] = Field(default_factory=list, max_length=16)
    distro_series: str = Field(default="jammy", pattern=r"^[a-z]{2,32}$")
    hwe_kernel: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,64}$")
    erase_policy: ErasePolicy = ErasePolicy.QUICK
    control_plane_endpoint: ControlPlaneEndpoint = Field(default_factory=ControlPlaneEndpoint)
    pod_subnet: ipaddress.IPv4Network = Field(default=ipaddress.IPv4Network("10.244.0.0/16"))
    service_subnet: ipaddress.IPv4Network = Field(default=ipaddress.IPv4Network("10.96.0.0/12"))
    cni_manifest_url: str = Field(
        default=DEFAULT_CNI_MANIFEST,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="applied after kubeadm init; an air-gapped site names its mirror",
    )
    remediation_enabled: bool = Field(
        default=True, description="false: no pool's unhealthy nodes are repaired"
    )

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
        if self.pod_subnet.overlaps(self.service_subnet):
            raise ValueError(
                f"pod_subnet {self.pod_subnet} overlaps service_subnet {self.service_subnet}; "
                "pick disjoint ranges"
            )
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

    def image_of(self, pool: NodePool) -> str:
        """The MAAS image a pool deploys: its own, or Ubuntu at the cluster's series."""
        return pool.image or f"ubuntu/{self.distro_series}"


def version_key(version: str) -> tuple[int, int]:
    """Sortable (minor, patch) of a `v1.M.P` Kubernetes version (see `domain.versions`)."""
    minor, patch = parse_version(version)
    return minor, patch
