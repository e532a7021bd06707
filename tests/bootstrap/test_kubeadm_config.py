"""The documents parse back into the strict v1beta3 models, and the models refuse strays."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from bootstrap import kubeadm_config as kc
from bootstrap.cloud_config import NodeRole, kubeadm_documents, upload_certs_documents
from bootstrap.material import ClusterBootstrap
from bootstrap.pki import discovery_hash
from domain.cluster import EndpointMode
from domain.node_labels import Taint
from tests.bootstrap.conftest import make_node


def test_first_control_plane_init_and_cluster_configuration(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    node = make_node(cluster_bootstrap, mode=EndpointMode.DNS, port=8443)
    init, cluster = kc.parse_documents(kc.dump_documents(*kubeadm_documents(node)))
    assert isinstance(init, kc.InitConfiguration) and isinstance(cluster, kc.ClusterConfiguration)
    assert init.bootstrap_tokens and init.node_registration and init.local_api_endpoint
    assert init.bootstrap_tokens[0].token == cluster_bootstrap.token.value
    # The token lives in the cluster until the expiry the control plane remembers for it.
    ttl = int(init.bootstrap_tokens[0].ttl.rstrip("s"))
    remaining = (cluster_bootstrap.token.expires_at - node.rendered_at).total_seconds()
    assert abs(ttl - remaining) <= 1 and ttl > 12 * 3600
    assert init.certificate_key == cluster_bootstrap.material.certificate_key
    assert init.node_registration.name == "cp-1"
    assert init.local_api_endpoint.bind_port == 8443
    assert cluster.kubernetes_version == "v1.30.4"
    assert cluster.control_plane_endpoint == "web-api.maas:8443"
    assert cluster.networking.pod_subnet == "10.244.0.0/16"
    assert cluster.networking.service_subnet == "10.96.0.0/12"
    assert "web-api.maas" in cluster.api_server.cert_sans


@pytest.mark.parametrize("role", [NodeRole.CONTROL_PLANE, NodeRole.WORKER])
def test_joins_discover_by_token_and_ca_hash(
    cluster_bootstrap: ClusterBootstrap, role: NodeRole
) -> None:
    node = make_node(cluster_bootstrap, role=role, mode=EndpointMode.EXTERNAL, port=443)
    (join,) = kc.parse_documents(kc.dump_documents(*kubeadm_documents(node)))
    assert isinstance(join, kc.JoinConfiguration)
    discovery = join.discovery.bootstrap_token
    assert discovery.token == join.discovery.tls_bootstrap_token == cluster_bootstrap.token.value
    assert discovery.api_server_endpoint == "lb.corp.example:443"
    assert discovery.ca_cert_hashes == [discovery_hash(cluster_bootstrap.material.pki.ca.cert_pem)]
    if role == NodeRole.WORKER:
        assert join.control_plane is None
    else:
        assert join.control_plane is not None
        assert join.control_plane.certificate_key == cluster_bootstrap.material.certificate_key
        assert join.control_plane.local_api_endpoint.bind_port == 6443  # behind the balancer


def test_vip_first_node_tolerates_its_kube_vip_manifest(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    init = kubeadm_documents(make_node(cluster_bootstrap, mode=EndpointMode.VIP))[0]
    assert isinstance(init, kc.InitConfiguration) and init.node_registration
    assert init.node_registration.ignore_preflight_errors == [kc.PREFLIGHT_MANIFESTS_DIR]
    dns = kubeadm_documents(make_node(cluster_bootstrap, mode=EndpointMode.DNS))[0]
    assert isinstance(dns, kc.InitConfiguration) and dns.node_registration
    assert dns.node_registration.ignore_preflight_errors is None


def test_strict_models_refuse_unknown_fields_and_kinds(cluster_bootstrap: ClusterBootstrap) -> None:
    text = kc.dump_documents(*kubeadm_documents(make_node(cluster_bootstrap)))
    docs = list(yaml.safe_load_all(text))
    docs[1]["apiServer"]["certSans"] = ["misspelt"]  # kubeadm spells it certSANs
    with pytest.raises(ValidationError, match="certSans"):
        kc.parse_documents(yaml.safe_dump_all(docs))
    docs = list(yaml.safe_load_all(text))
    docs[0]["apiVersion"] = "kubeadm.k8s.io/v1beta2"
    with pytest.raises(ValidationError, match="apiVersion"):
        kc.parse_documents(yaml.safe_dump_all(docs))
    with pytest.raises(ValueError, match="KubeletConfiguration"):
        kc.parse_documents(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        )


def test_control_plane_nodes_can_reupload_certificates(cluster_bootstrap: ClusterBootstrap) -> None:
    """kubeadm deletes uploaded certificates after 2 h; joins after that need a fresh upload."""
    node = make_node(cluster_bootstrap, role=NodeRole.CONTROL_PLANE)
    init, cluster = kc.parse_documents(kc.dump_documents(*upload_certs_documents(node)))
    assert isinstance(init, kc.InitConfiguration) and isinstance(cluster, kc.ClusterConfiguration)
    assert init.certificate_key == cluster_bootstrap.material.certificate_key
    assert init.bootstrap_tokens is None  # no token minted by a re-upload
    assert cluster.kubernetes_version == "v1.30.4"


LABELS = {"example.com/gpu": "a100", "node.kubernetes.io/tier": "batch"}
TAINTS = [
    Taint(key="example.com/gpu", value="true", effect="NoSchedule"),
    Taint(key="example.com/spot", effect="PreferNoSchedule"),
]


@pytest.mark.parametrize("role", list(NodeRole))
def test_every_node_registers_with_its_zone_labels_and_taints(
    cluster_bootstrap: ClusterBootstrap, role: NodeRole
) -> None:
    node = make_node(cluster_bootstrap, role=role, zone="az2", labels=LABELS, taints=TAINTS)
    first = kc.parse_documents(kc.dump_documents(*kubeadm_documents(node)))[0]
    assert isinstance(first, kc.InitConfiguration | kc.JoinConfiguration)
    registration = first.node_registration
    assert registration is not None
    assert registration.kubelet_extra_args == {
        "node-labels": "example.com/gpu=a100,node.kubernetes.io/tier=batch,"
        "topology.kubernetes.io/zone=az2"
    }
    taints = [(t.key, t.value, t.effect) for t in registration.taints or []]
    pool_taints = [
        ("example.com/gpu", "true", "NoSchedule"),
        ("example.com/spot", None, "PreferNoSchedule"),
    ]
    # A list replaces kubeadm's default taint, so control-plane nodes keep it explicitly.
    own = [("node-role.kubernetes.io/control-plane", None, "NoSchedule")]
    assert taints == (pool_taints if role == NodeRole.WORKER else own + pool_taints)


def test_without_labels_or_taints_kubeadm_keeps_its_defaults(
    cluster_bootstrap: ClusterBootstrap,
) -> None:
    for role in NodeRole:
        first = kubeadm_documents(make_node(cluster_bootstrap, role=role))[0]
        assert isinstance(first, kc.InitConfiguration | kc.JoinConfiguration)
        assert first.node_registration is not None
        assert first.node_registration.taints is None
        assert first.node_registration.kubelet_extra_args is None
    # The zone alone is a label.
    zoned = kubeadm_documents(make_node(cluster_bootstrap, role=NodeRole.WORKER, zone="az1"))[0]
    assert isinstance(zoned, kc.JoinConfiguration)
    assert zoned.node_registration.kubelet_extra_args == {
        "node-labels": "topology.kubernetes.io/zone=az1"
    }


def test_the_documents_keep_kubeadms_spelling(cluster_bootstrap: ClusterBootstrap) -> None:
    node = make_node(cluster_bootstrap, role=NodeRole.WORKER, zone="az1", taints=TAINTS[:1])
    (join,) = yaml.safe_load_all(kc.dump_documents(*kubeadm_documents(node)))
    assert join["nodeRegistration"]["kubeletExtraArgs"] == {
        "node-labels": "topology.kubernetes.io/zone=az1"
    }
    assert join["nodeRegistration"]["taints"] == [
        {"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]


def test_a_node_refuses_labels_a_kubelet_may_not_set(cluster_bootstrap: ClusterBootstrap) -> None:
    with pytest.raises(ValidationError, match="NodeRestriction"):
        make_node(cluster_bootstrap, labels={"node-role.kubernetes.io/gpu": ""})
    with pytest.raises(ValidationError, match="zone"):
        make_node(cluster_bootstrap, zone="bad zone")
