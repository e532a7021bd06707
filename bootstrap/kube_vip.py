"""kube-vip as a static pod on control-plane nodes: it announces the `vip` endpoint by ARP."""

from __future__ import annotations

from typing import Any

import yaml

from domain.cluster import version_key

# Replaced at boot with the default route's interface (unknown when rendering).
INTERFACE_PLACEHOLDER = "__METALGATE_VIP_INTERFACE__"


def kube_vip_manifest(*, image: str, vip: str, port: int, kubeconfig: str) -> str:
    """The pod kube-vip's docs give for ARP mode with control-plane leader election."""
    env = {
        "vip_arp": "true",
        "port": str(port),
        "vip_interface": INTERFACE_PLACEHOLDER,
        "vip_cidr": "32",
        "cp_enable": "true",
        "cp_namespace": "kube-system",
        "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "5",
        "vip_renewdeadline": "3",
        "vip_retryperiod": "1",
        "address": vip,
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "containers": [
                {
                    "name": "kube-vip",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["manager"],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                    "volumeMounts": [
                        {"mountPath": "/etc/kubernetes/admin.conf", "name": "kubeconfig"}
                    ],
                }
            ],
            "hostAliases": [{"hostnames": ["kubernetes"], "ip": "127.0.0.1"}],
            "hostNetwork": True,
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig}}],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False)


def kube_vip_kubeconfig(kubernetes_version: str, first_control_plane: bool) -> str:
    """From 1.29, admin.conf has no rights until `kubeadm init` ends, and kube-vip must run
    during it: the first node lends it super-admin.conf (kube-vip's documented workaround)."""
    if first_control_plane and version_key(kubernetes_version) >= (29, 0):
        return "/etc/kubernetes/super-admin.conf"
    return "/etc/kubernetes/admin.conf"
