"""The per-node `#cloud-config`: one YAML document, no multipart.

It writes files only (agent bootstrap, kubeadm config, CA material on the first node, proxy
settings, the node script, systemd units) and runs one command, the node script, so no secret
is ever on a command line. Control-plane nodes also get an upkeep timer that keeps kubeadm's
uploaded certificates and the current bootstrap tokens in the cluster, for joins long after
the create. `agent/cloudinit.py` finds the AgentBootstrap in it at AGENT_BOOTSTRAP_PATH.
"""

from __future__ import annotations

import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from bootstrap import kubeadm_config as kc
from bootstrap import token_window
from bootstrap.kube_vip import kube_vip_kubeconfig, kube_vip_manifest
from bootstrap.material import ClusterBootstrap
from bootstrap.node_script import (
    AGENT_VENV,
    KUBE_VIP_TEMPLATE,
    KUBEADM_CONFIG,
    NODE_ENV,
    PROXY_ENV,
    SCRIPT_PATH,
    TOKEN_PROGRAM,
    TOKEN_SEED,
    UPKEEP_TIMER,
    UPLOAD_CERTS_CONFIG,
    node_script,
)
from bootstrap.pki import discovery_hash
from bootstrap.proxy import apt_config, environment_file, no_proxy_list, systemd_drop_in
from domain.agent_wire import AgentBootstrap
from domain.cluster import EndpointMode
from domain.gateway import ProxySettings
from domain.node_labels import (
    CONTROL_PLANE_TAINT,
    MAX_LABELS,
    MAX_TAINTS,
    ZONE_LABEL,
    LabelKey,
    LabelValue,
    Taint,
    node_labels_arg,
)

AGENT_BOOTSTRAP_PATH = "/etc/metalgate/bootstrap.json"
AGENT_UNIT = "metalgate-agent.service"
PKI_DIR = "/etc/kubernetes/pki"
MODULES = ["overlay", "br_netfilter"]
SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}
_SAFE_VALUE = r"^[^\s\"'\\`$]+$"


class NodeRole(StrEnum):
    FIRST_CONTROL_PLANE = "first-control-plane"
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"


class PackageSources(BaseModel):
    """Operator settings, resolved for this cluster's version."""

    model_config = ConfigDict(extra="forbid")

    kubernetes_repository: str = Field(pattern=_SAFE_VALUE)
    kubernetes_key_url: str = Field(pattern=_SAFE_VALUE)
    agent_pip_args: list[str] = Field(min_length=1, description="what `pip install` gets")
    kube_vip_image: str = Field(pattern=_SAFE_VALUE)


class NodeUserData(BaseModel):
    """Everything one node's cloud-init needs; built by the render activity."""

    model_config = ConfigDict(extra="forbid")

    agent: AgentBootstrap
    role: NodeRole
    kubernetes_version: str = Field(pattern=r"^v1\.\d{1,2}\.\d{1,3}$")
    image: str = Field(description="ubuntu/<series> or custom/<name>")
    endpoint_mode: EndpointMode
    endpoint_host: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.:-]+$")
    endpoint_port: int = Field(ge=1, le=65535)
    pod_subnet: str
    service_subnet: str
    cni_manifest_url: str = Field(pattern=_SAFE_VALUE)
    node_addresses: list[str] = Field(default_factory=list)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    bootstrap: ClusterBootstrap = Field(repr=False)
    packages: PackageSources
    token_ttl_seconds: int = Field(ge=3600, description="the window tokens' TTL")
    rendered_at: AwareDatetime = Field(description="the token's TTL in kubeadm counts from here")
    zone: LabelValue = Field(default="", description="the machine's MAAS zone, as a label")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)
    taints: list[Taint] = Field(default_factory=list, max_length=MAX_TAINTS)

    @field_validator("proxy")
    @classmethod
    def _proxy_is_plain(cls, proxy: ProxySettings) -> ProxySettings:
        # These values land in shell, systemd and apt syntax; refuse what would break out.
        for value in [proxy.http_proxy or "", proxy.https_proxy or "", *proxy.no_proxy]:
            if value and not re.match(_SAFE_VALUE, value):
                raise ValueError("a proxy setting has a space, quote or shell character; fix it")
        return proxy

    @property
    def control_plane(self) -> bool:
        return self.role != NodeRole.WORKER

    @property
    def endpoint(self) -> str:
        return f"{self.endpoint_host}:{self.endpoint_port}"

    @property
    def custom_image(self) -> bool:
        return self.image.startswith("custom/")

    @property
    def node_labels(self) -> dict[str, str]:
        """What the kubelet registers the node with: the pool's labels and the zone."""
        return {**self.labels, ZONE_LABEL: self.zone} if self.zone else dict(self.labels)


def node_registration(node: NodeUserData) -> kc.NodeRegistration:
    """Name, labels and taints the node joins with, for init and join alike."""
    registration = kc.NodeRegistration(name=node.agent.hostname)
    if node.node_labels:
        registration.kubelet_extra_args = {"node-labels": node_labels_arg(node.node_labels)}
    if node.taints:
        taints = list(node.taints)
        # Giving any taint replaces kubeadm's default: keep the control plane's own.
        own = (CONTROL_PLANE_TAINT.key, CONTROL_PLANE_TAINT.effect)
        if node.control_plane and own not in [(t.key, t.effect) for t in taints]:
            taints.insert(0, CONTROL_PLANE_TAINT)
        registration.taints = [
            kc.Taint(key=t.key, value=t.value or None, effect=t.effect.value) for t in taints
        ]
    return registration


def kubeadm_documents(node: NodeUserData) -> list[kc.KubeadmDocument]:
    """InitConfiguration + ClusterConfiguration on the first node, a JoinConfiguration elsewhere."""
    material, token = node.bootstrap.material, node.bootstrap.token
    registration = node_registration(node)
    # With a VIP or DNS record the endpoint reaches the API servers directly, so they listen
    # on its port; an external load balancer may forward from any port to 6443.
    bind = kc.APIEndpoint(
        bind_port=6443 if node.endpoint_mode == EndpointMode.EXTERNAL else node.endpoint_port
    )
    if node.role == NodeRole.FIRST_CONTROL_PLANE:
        if node.endpoint_mode == EndpointMode.VIP:
            registration.ignore_preflight_errors = [kc.PREFLIGHT_MANIFESTS_DIR]
        remaining = int((token.expires_at - node.rendered_at).total_seconds())
        return [
            kc.InitConfiguration(
                bootstrap_tokens=[
                    kc.BootstrapTokenSpec(
                        token=token.value,
                        description="metalgate node joins",
                        ttl=f"{max(remaining, 60)}s",
                    )
                ],
                node_registration=registration,
                local_api_endpoint=bind,
                certificate_key=material.certificate_key,
            ),
            _cluster_configuration(node),
        ]
    discovery = kc.Discovery(
        bootstrap_token=kc.BootstrapTokenDiscovery(
            token=token.value,
            api_server_endpoint=node.endpoint,
            ca_cert_hashes=[discovery_hash(material.pki.ca.cert_pem)],
        ),
        tls_bootstrap_token=token.value,
    )
    control_plane = None
    if node.role == NodeRole.CONTROL_PLANE:
        control_plane = kc.JoinControlPlane(
            local_api_endpoint=bind, certificate_key=material.certificate_key
        )
    return [
        kc.JoinConfiguration(
            node_registration=registration, discovery=discovery, control_plane=control_plane
        )
    ]


def upload_certs_documents(node: NodeUserData) -> list[kc.KubeadmDocument]:
    """What `kubeadm init phase upload-certs` reads on any control-plane node."""
    return [
        kc.InitConfiguration(certificate_key=node.bootstrap.material.certificate_key),
        _cluster_configuration(node),
    ]


def _cluster_configuration(node: NodeUserData) -> kc.ClusterConfiguration:
    return kc.ClusterConfiguration(
        cluster_name=node.agent.cluster_name,
        kubernetes_version=node.kubernetes_version,
        control_plane_endpoint=node.endpoint,
        networking=kc.Networking(pod_subnet=node.pod_subnet, service_subnet=node.service_subnet),
        api_server=kc.APIServer(cert_sans=[node.endpoint_host]),
    )


def render_cloud_config(node: NodeUserData) -> str:
    """The node's user data, a single `#cloud-config` document."""
    config = {
        "hostname": node.agent.hostname,
        "write_files": _files(node),
        "runcmd": [[SCRIPT_PATH]],
    }
    return "#cloud-config\n" + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=1000)


class _Dumper(yaml.SafeDumper):
    """Multi-line file contents as `|` blocks, so an operator can read the user data in MAAS."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, Any]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def _secret(path: str, content: str) -> dict[str, Any]:
    return _file(path, content, "0600")


def _files(node: NodeUserData) -> list[dict[str, Any]]:
    files = [
        # First: agent/cloudinit.py and the emulator's boot hook look for it.
        _secret(AGENT_BOOTSTRAP_PATH, node.agent.model_dump_json(indent=2) + "\n"),
        _secret(KUBEADM_CONFIG, kc.dump_documents(*kubeadm_documents(node))),
        _file("/etc/modules-load.d/kubernetes.conf", "".join(f"{m}\n" for m in MODULES)),
        _file(
            "/etc/sysctl.d/99-kubernetes.conf", "".join(f"{k} = {v}\n" for k, v in SYSCTLS.items())
        ),
        _file(NODE_ENV, _node_env(node)),
        _file(SCRIPT_PATH, node_script(), "0755"),
        _file(f"/etc/systemd/system/{AGENT_UNIT}", _agent_unit()),
    ]
    if node.role == NodeRole.FIRST_CONTROL_PLANE:
        files += _pki_files(node)
    if node.control_plane:
        files += _upkeep_files(node)
    if node.control_plane and node.endpoint_mode == EndpointMode.VIP:
        kubeconfig = kube_vip_kubeconfig(
            node.kubernetes_version, node.role == NodeRole.FIRST_CONTROL_PLANE
        )
        manifest = kube_vip_manifest(
            image=node.packages.kube_vip_image,
            vip=node.endpoint_host,
            port=node.endpoint_port,
            kubeconfig=kubeconfig,
        )
        files.append(_file(KUBE_VIP_TEMPLATE, manifest, "0600"))
    if node.proxy.enabled:
        files += _proxy_files(node)
    return files


def _pki_files(node: NodeUserData) -> list[dict[str, Any]]:
    pki = node.bootstrap.material.pki
    pairs = [("ca", pki.ca), ("etcd/ca", pki.etcd_ca), ("front-proxy-ca", pki.front_proxy_ca)]
    files = []
    for name, pair in pairs:
        files += [
            _file(f"{PKI_DIR}/{name}.crt", pair.cert_pem),
            _secret(f"{PKI_DIR}/{name}.key", pair.key_pem),
        ]
    files += [
        _secret(f"{PKI_DIR}/sa.key", pki.service_account.key_pem),
        _file(f"{PKI_DIR}/sa.pub", pki.service_account.cert_pem),
    ]
    return files


def _upkeep_files(node: NodeUserData) -> list[dict[str, Any]]:
    """What every control-plane node needs to let later nodes join (node script `upkeep`)."""
    service = UPKEEP_TIMER.replace(".timer", ".service")
    return [
        _secret(UPLOAD_CERTS_CONFIG, kc.dump_documents(*upload_certs_documents(node))),
        _secret(TOKEN_SEED, node.bootstrap.material.token_seed + "\n"),
        _file(TOKEN_PROGRAM, Path(token_window.__file__).read_text(), "0755"),
        _file(
            f"/etc/systemd/system/{service}",
            "[Unit]\n"
            "Description=Keep uploaded certificates and bootstrap tokens for later joins\n"
            "ConditionPathExists=/etc/kubernetes/admin.conf\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"EnvironmentFile=-{PROXY_ENV}\n"
            f"ExecStart={SCRIPT_PATH} upkeep\n",
        ),
        _file(
            f"/etc/systemd/system/{UPKEEP_TIMER}",
            "[Unit]\n"
            "Description=Upkeep before kubeadm's 2 h certificate expiry\n"
            "\n"
            "[Timer]\n"
            "OnActiveSec=1min\n"
            "OnUnitActiveSec=50min\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n",
        ),
    ]


def _proxy_files(node: NodeUserData) -> list[dict[str, Any]]:
    no_proxy = no_proxy_list(
        node.proxy,
        node.pod_subnet,
        node.service_subnet,
        node.endpoint_host,
        node.agent.hostname,
        *node.node_addresses,
    )
    drop_in = systemd_drop_in(node.proxy, no_proxy)
    return [
        _file("/etc/apt/apt.conf.d/90metalgate-proxy", apt_config(node.proxy)),
        _secret(PROXY_ENV, environment_file(node.proxy, no_proxy)),
        _file("/etc/systemd/system/containerd.service.d/10-metalgate-proxy.conf", drop_in),
        _file("/etc/systemd/system/kubelet.service.d/10-metalgate-proxy.conf", drop_in),
        {
            "path": "/etc/environment",
            "append": True,
            "content": environment_file(node.proxy, no_proxy),
        },
    ]


def _node_env(node: NodeUserData) -> str:
    """Shell assignments the node script sources; none of them is a secret."""
    values = {
        "NODE_ROLE": node.role.value,
        "IMAGE": node.image,
        "IMAGE_KIND": "custom" if node.custom_image else "ubuntu",
        "KUBERNETES_VERSION": node.kubernetes_version,
        "KUBERNETES_REPOSITORY": node.packages.kubernetes_repository,
        "KUBERNETES_KEY_URL": node.packages.kubernetes_key_url,
        "ENDPOINT_MODE": node.endpoint_mode.value,
        "CNI_MANIFEST_URL": node.cni_manifest_url,
        "TOKEN_TTL_SECONDS": str(node.token_ttl_seconds),
    }
    lines = [f"{k}={shlex.quote(v)}" for k, v in values.items()]
    lines.append(
        f"AGENT_PIP_ARGS=({' '.join(shlex.quote(a) for a in node.packages.agent_pip_args)})"
    )
    return "\n".join(lines) + "\n"


def _agent_unit() -> str:
    return (
        "[Unit]\n"
        "Description=metalgate cluster agent\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        f"EnvironmentFile=-{PROXY_ENV}\n"
        f"ExecStart={AGENT_VENV}/bin/metalgate agent run --bootstrap {AGENT_BOOTSTRAP_PATH}\n"
        "Restart=always\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
