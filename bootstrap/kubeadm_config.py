"""kubeadm configuration documents, as strict models of the fields metalgate sets.

Written from kubeadm's `kubeadm.k8s.io/v1beta3` reference (accepted by every kubeadm from
1.22 on, the Kubernetes versions metalgate installs). `extra="forbid"` plus camelCase
aliases mean a misspelt or invented field fails here, not at `kubeadm init` on a node.
"""

from __future__ import annotations

from typing import Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

API_VERSION: Final = "kubeadm.k8s.io/v1beta3"
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
# kubeadm's preflight wants an empty manifests dir; kube-vip's static pod is there on purpose.
PREFLIGHT_MANIFESTS_DIR = "DirAvailable--etc-kubernetes-manifests"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class BootstrapTokenSpec(_Strict):
    token: str = Field(pattern=r"^[a-z0-9]{6}\.[a-z0-9]{16}$", repr=False)
    description: str | None = None
    ttl: str = Field(pattern=r"^\d+s$", description="a Go duration, e.g. 86400s")
    usages: list[Literal["signing", "authentication"]] = ["signing", "authentication"]
    groups: list[str] = ["system:bootstrappers:kubeadm:default-node-token"]


class Taint(_Strict):
    """core/v1 Taint as kubeadm's nodeRegistration takes it."""

    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodeRegistration(_Strict):
    name: str
    cri_socket: str = CRI_SOCKET
    # None: kubeadm's default (control-plane nodes get its NoSchedule taint); a list
    # replaces that default entirely.
    taints: list[Taint] | None = None
    # Flags without the leading dashes, e.g. {"node-labels": "a=b,c=d"}.
    kubelet_extra_args: dict[str, str] | None = None
    ignore_preflight_errors: list[str] | None = None


class APIEndpoint(_Strict):
    advertise_address: str | None = None
    bind_port: int = Field(default=6443, ge=1, le=65535)


class InitConfiguration(_Strict):
    api_version: Literal["kubeadm.k8s.io/v1beta3"] = API_VERSION
    kind: Literal["InitConfiguration"] = "InitConfiguration"
    # Optional: `kubeadm init phase upload-certs` needs only the certificate key.
    bootstrap_tokens: list[BootstrapTokenSpec] | None = None
    node_registration: NodeRegistration | None = None
    local_api_endpoint: APIEndpoint | None = Field(default=None, alias="localAPIEndpoint")
    certificate_key: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)


class Networking(_Strict):
    pod_subnet: str
    service_subnet: str
    dns_domain: str = "cluster.local"


class APIServer(_Strict):
    cert_sans: list[str] = Field(alias="certSANs", min_length=1)


class ClusterConfiguration(_Strict):
    api_version: Literal["kubeadm.k8s.io/v1beta3"] = API_VERSION
    kind: Literal["ClusterConfiguration"] = "ClusterConfiguration"
    cluster_name: str
    kubernetes_version: str = Field(pattern=r"^v1\.\d{1,2}\.\d{1,3}$")
    control_plane_endpoint: str = Field(description="host:port")
    networking: Networking
    api_server: APIServer
    certificates_dir: Literal["/etc/kubernetes/pki"] = "/etc/kubernetes/pki"


class BootstrapTokenDiscovery(_Strict):
    token: str = Field(pattern=r"^[a-z0-9]{6}\.[a-z0-9]{16}$", repr=False)
    api_server_endpoint: str
    ca_cert_hashes: list[str] = Field(min_length=1)


class Discovery(_Strict):
    bootstrap_token: BootstrapTokenDiscovery
    tls_bootstrap_token: str = Field(pattern=r"^[a-z0-9]{6}\.[a-z0-9]{16}$", repr=False)


class JoinControlPlane(_Strict):
    local_api_endpoint: APIEndpoint = Field(alias="localAPIEndpoint")
    certificate_key: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)


class JoinConfiguration(_Strict):
    api_version: Literal["kubeadm.k8s.io/v1beta3"] = API_VERSION
    kind: Literal["JoinConfiguration"] = "JoinConfiguration"
    node_registration: NodeRegistration
    discovery: Discovery
    control_plane: JoinControlPlane | None = None


KubeadmDocument = InitConfiguration | ClusterConfiguration | JoinConfiguration
_KINDS: dict[str, type[_Strict]] = {
    "InitConfiguration": InitConfiguration,
    "ClusterConfiguration": ClusterConfiguration,
    "JoinConfiguration": JoinConfiguration,
}


def dump_documents(*documents: KubeadmDocument) -> str:
    """A multi-document YAML file as `kubeadm --config` reads it."""
    return yaml.safe_dump_all(
        [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in documents],
        sort_keys=False,
    )


def parse_documents(text: str) -> list[KubeadmDocument]:
    """Strictly parse a kubeadm config file; an unknown kind or field is an error."""
    parsed: list[KubeadmDocument] = []
    for raw in yaml.safe_load_all(text):
        kind = raw.get("kind") if isinstance(raw, dict) else None
        model = _KINDS.get(str(kind))
        if model is None:
            raise ValueError(f"not a {API_VERSION} document metalgate writes: kind {kind!r}")
        parsed.append(model.model_validate(raw))  # type: ignore[arg-type]
    return parsed
