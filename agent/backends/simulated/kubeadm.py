"""A simulated kubeadm: the real phase names and order, sleeps instead of work.

Nothing here creates a real cluster. The kubeconfig it writes is shaped like kubeadm's
admin.conf so tools and people recognise it, but its certificate data is a labelled
placeholder.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets

import yaml

from agent.node_backend import PhaseCallback

log = logging.getLogger(__name__)

# `kubeadm init` phases, in the order kubeadm runs them.
INIT_PHASES = (
    "preflight",
    "certs",
    "kubeconfig",
    "kubelet-start",
    "control-plane",
    "etcd",
    "upload-config",
    "mark-control-plane",
    "bootstrap-token",
    "addon",
)
JOIN_PHASES = ("preflight", "kubelet-start")
API_SERVER_PORT = 6443


async def run_phases(
    phases: tuple[str, ...], total_seconds: float, on_phase: PhaseCallback | None = None
) -> None:
    """Run each phase for an equal share of `total_seconds`."""
    share = total_seconds / len(phases)
    for phase in phases:
        log.debug("kubeadm phase %s", phase)
        if on_phase is not None:
            outcome = on_phase(phase)
            if outcome is not None:
                await outcome
        if share:
            await asyncio.sleep(share)


def _placeholder_pem(label: str) -> str:
    # Random so two clusters never share "certificates", labelled so nobody mistakes them.
    body = base64.b64encode(f"SIMULATED {label} {secrets.token_hex(24)}".encode()).decode()
    pem = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"
    return base64.b64encode(pem.encode()).decode()


def admin_kubeconfig(cluster_name: str, endpoint_ip: str) -> str:
    """An admin.conf for the cluster's API server at `endpoint_ip`:6443 (simulated certs)."""
    user = f"kubernetes-admin@{cluster_name}"
    host = f"[{endpoint_ip}]" if ":" in endpoint_ip else endpoint_ip
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": f"https://{host}:{API_SERVER_PORT}",
                    "certificate-authority-data": _placeholder_pem("CERTIFICATE"),
                },
            }
        ],
        "contexts": [
            {"name": user, "context": {"cluster": cluster_name, "user": "kubernetes-admin"}}
        ],
        "current-context": user,
        "preferences": {},
        "users": [
            {
                "name": "kubernetes-admin",
                "user": {
                    "client-certificate-data": _placeholder_pem("CERTIFICATE"),
                    "client-key-data": _placeholder_pem("PRIVATE KEY"),
                },
            }
        ],
    }
    header = "# Simulated by the metalgate agent: certificate data are placeholders.\n"
    return header + yaml.safe_dump(document, sort_keys=False)
