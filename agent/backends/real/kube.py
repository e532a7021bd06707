"""The calls the agent makes to a real API server, through `kubernetes_asyncio`.

Why `kubernetes_asyncio`: it is generated from the Kubernetes OpenAPI specification by the
same generator as the official `kubernetes` client, so every request and answer has the API's
own shape (Eviction, Status causes, strategic-merge patches) without hand-written models; it
is asyncio-native on aiohttp, which the agent already ships, so no second HTTP stack; and it
loads kubeadm's kubeconfigs as they are (embedded client certificates, CA data, tokens).
lightkube was the other candidate: smaller, but its current release brings its own HTTP stack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from agent.node_backend import NodeState

log = logging.getLogger(__name__)

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
# The API server names the blocking budget in the 429's status cause of this type.
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
_BUDGET_NAME = re.compile(r"disruption budget (\S+)")


class DrainBlocked(RuntimeError):
    """A drain ran out of time; the message names what is still there and why."""


@dataclass(frozen=True)
class NodeRecord:
    """A Node as read from the API: its state plus the annotations the agent coordinates by."""

    state: NodeState
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str


class KubeApi:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)

    @classmethod
    async def from_kubeconfig(cls, path: Path) -> KubeApi:
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(path), client_configuration=configuration, persist_config=False
        )
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api.close()

    async def nodes(self) -> list[NodeRecord]:
        listing = await self._core.list_node()
        return [_record(node) for node in listing.items]

    async def node(self, name: str) -> NodeRecord | None:
        try:
            return _record(await self._core.read_node(name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def set_unschedulable(self, name: str, unschedulable: bool) -> None:
        """Cordon (True) or uncordon (False), as `kubectl cordon` does: one patch of the spec."""
        await self._core.patch_node(name, {"spec": {"unschedulable": unschedulable}})

    async def annotate(self, name: str, annotations: dict[str, str | None]) -> None:
        """Set annotations; None removes one (a strategic-merge patch with null)."""
        await self._core.patch_node(name, {"metadata": {"annotations": annotations}})

    async def delete_node(self, name: str) -> None:
        try:
            await self._core.delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise

    async def evictable_pods(self, node: str) -> list[PodRef]:
        """Pods on `node` a drain evicts: not DaemonSet pods (their controller ignores
        cordons) nor mirror pods (static pods the kubelet owns), as `kubectl drain` skips."""
        listing = await self._core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}"
        )
        return [
            PodRef(pod.metadata.namespace, pod.metadata.name)
            for pod in listing.items
            if not _daemon_set_pod(pod) and not _mirror_pod(pod)
        ]

    async def drain(self, node: str, *, within: float, retry_interval: float) -> None:
        """Evict every evictable pod through the Eviction API and wait until they are gone.

        A 429 means a PodDisruptionBudget forbids the eviction for now: retried until
        `within` seconds, whose expiry names the budget.
        """
        deadline = time.monotonic() + within
        blocked: dict[PodRef, str] = {}
        while True:
            pods = await self.evictable_pods(node)
            if not pods:
                return
            for pod in pods:
                reason = await self._evict(pod)
                if reason is None:
                    blocked.pop(pod, None)
                else:
                    blocked[pod] = reason
            if time.monotonic() >= deadline:
                raise DrainBlocked(_drain_timeout_message(node, within, pods, blocked))
            await asyncio.sleep(retry_interval)

    async def _evict(self, pod: PodRef) -> str | None:
        """Ask for one eviction; None when accepted (or the pod is gone), else why not."""
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace),
        )
        try:
            await self._core.create_namespaced_pod_eviction(pod.name, pod.namespace, body)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 429:
                return _blocking_budget(error.body)
            raise
        return None


def _record(node: Any) -> NodeRecord:
    labels = node.metadata.labels or {}
    conditions = (node.status.conditions if node.status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    info = node.status.node_info if node.status else None
    state = NodeState(
        name=node.metadata.name,
        control_plane=CONTROL_PLANE_LABEL in labels,
        ready=ready,
        kubelet_version=info.kubelet_version if info else "",
        schedulable=not (node.spec and node.spec.unschedulable),
    )
    return NodeRecord(state, dict(node.metadata.annotations or {}))


def _daemon_set_pod(pod: Any) -> bool:
    owners = pod.metadata.owner_references or []
    return any(owner.kind == "DaemonSet" and owner.controller for owner in owners)


def _mirror_pod(pod: Any) -> bool:
    return MIRROR_POD_ANNOTATION in (pod.metadata.annotations or {})


def _blocking_budget(body: str | bytes | None) -> str:
    """The budget a 429 names (`The disruption budget web needs 2 healthy pods ...`)."""
    try:
        status = json.loads(body or "{}")
    except ValueError:
        status = {}
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if cause.get("reason") == DISRUPTION_BUDGET_CAUSE:
            message = str(cause.get("message", ""))
            match = _BUDGET_NAME.search(message)
            return f"PodDisruptionBudget {match.group(1)}: {message}" if match else message
    return str(status.get("message") or "the API server refused the eviction (429)")


def _drain_timeout_message(
    node: str, timeout: float, pods: list[PodRef], blocked: dict[PodRef, str]
) -> str:
    if blocked:
        reasons = "; ".join(f"{p.namespace}/{p.name} blocked by {r}" for p, r in blocked.items())
    else:
        reasons = "evicted pods did not terminate: " + ", ".join(
            f"{p.namespace}/{p.name}" for p in pods
        )
    return f"drain of {node} timed out after {timeout:.0f}s: {reasons}"
