"""One cluster's material for the whole folder (RSA keys are slow to make) and a node builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bootstrap.cloud_config import NodeRole, NodeUserData, PackageSources
from bootstrap.material import ClusterBootstrap, new_cluster_material
from bootstrap.tokens import window_token
from domain.agent_wire import AgentBootstrap
from domain.cluster import EndpointMode
from domain.gateway import ProxySettings
from domain.node_labels import Taint

PROXY = ProxySettings(
    http_proxy="http://proxy.corp:3128",
    https_proxy="http://proxy.corp:3128",
    no_proxy=["10.0.0.0/8", ".corp"],
)
ENDPOINT_HOST = {
    EndpointMode.VIP: "10.20.0.50",
    EndpointMode.DNS: "web-api.maas",
    EndpointMode.EXTERNAL: "lb.corp.example",
}


@pytest.fixture(scope="session")
def cluster_bootstrap() -> ClusterBootstrap:
    material = new_cluster_material()
    token = window_token(material.token_seed, timedelta(hours=24), datetime.now(UTC))
    return ClusterBootstrap(material=material, token=token)


def make_node(
    material: ClusterBootstrap,
    *,
    role: NodeRole = NodeRole.FIRST_CONTROL_PLANE,
    mode: EndpointMode = EndpointMode.VIP,
    proxy: ProxySettings | None = None,
    image: str = "ubuntu/jammy",
    version: str = "v1.30.4",
    port: int = 6443,
    zone: str = "",
    labels: dict[str, str] | None = None,
    taints: list[Taint] | None = None,
) -> NodeUserData:
    proxy = proxy or ProxySettings()
    hostname = {"first-control-plane": "cp-1", "control-plane": "cp-2", "worker": "w-1"}[role]
    return NodeUserData(
        agent=AgentBootstrap(
            api_url="https://api.example:8443",
            cluster_id="cl-1",
            cluster_name="web",
            agent_token="mga_agent-secret",
            hostname=hostname,
            system_id=f"sys-{hostname}",
            role="worker" if role == NodeRole.WORKER else "control-plane",
            first_control_plane=role == NodeRole.FIRST_CONTROL_PLANE,
            kubernetes_version=version,
            proxy=proxy,
        ),
        role=role,
        kubernetes_version=version,
        image=image,
        endpoint_mode=mode,
        endpoint_host=ENDPOINT_HOST[mode],
        endpoint_port=port,
        pod_subnet="10.244.0.0/16",
        service_subnet="10.96.0.0/12",
        cni_manifest_url="https://mirror.corp/flannel.yml",
        node_addresses=["10.20.0.11"],
        proxy=proxy,
        bootstrap=material,
        packages=PackageSources(
            kubernetes_repository="https://pkgs.k8s.io/core:/stable:/v1.30/deb/",
            kubernetes_key_url="https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key",
            agent_pip_args=[
                "https://api.example:8443/v1/agent/package/metalgate_agent-0.1.0-py3-none-any.whl"
            ],
            kube_vip_image="ghcr.io/kube-vip/kube-vip:v0.8.9",
        ),
        token_ttl_seconds=24 * 3600,
        rendered_at=datetime.now(UTC),
        zone=zone,
        labels=labels or {},
        taints=taints or [],
    )
