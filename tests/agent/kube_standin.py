"""A stand-in Kubernetes API server on a loopback port, for the real backend's calls only.

No API server runs on these machines, so this serves the few endpoints the agent uses with
the shapes the Kubernetes API reference gives them: `NodeList`/`Node` (labels, annotations,
`spec.unschedulable`, `status.conditions`, `status.nodeInfo.kubeletVersion`), strategic-merge
`PATCH` of a Node, `PodList` by `fieldSelector=spec.nodeName=`, and the `policy/v1` Eviction
subresource answering 201, or 429 `TooManyRequests` whose status cause of type
`DisruptionBudget` names the budget, as the API server's eviction REST storage does.
Every request is logged so tests can check order.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.agent.kube_pki import ClusterPki
from tests.support.ports import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


@dataclass
class Budget:
    """A PodDisruptionBudget that refuses `refusals` evictions (None: all of them)."""

    name: str
    pods: set[str]
    refusals: int | None = None
    expected: int = 1


@dataclass
class KubeStandIn:
    token: str
    port: int = field(default_factory=free_port)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    budgets: list[Budget] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    # With `pki`, HTTPS that requires the cluster CA's client certificates, as kubeadm's
    # admin.conf uses; without, plain HTTP with the bearer `token`.
    pki: ClusterPki | None = None
    _runner: web.AppRunner | None = None
    _tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.pki else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, user: str = "kubernetes-admin") -> Path:
        """A kubeconfig for this server, shaped like kubeadm's admin.conf."""
        cluster: dict[str, str] = {"server": self.url}
        credentials: dict[str, str] = {"token": self.token}
        if self.pki is not None:
            cluster["certificate-authority-data"] = _b64(self.pki.ca.cert)
            credentials = {
                "client-certificate-data": _b64(self.pki.admin.cert),
                "client-key-data": _b64(self.pki.admin.key),
            }
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": cluster}],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "ctx", "context": {"cluster": "standin", "user": user}}],
            "current-context": "ctx",
        }
        path.write_text(yaml.safe_dump(document))
        return path

    def add_node(self, name: str, *, control_plane: bool = False, version: str = "v1.30.2") -> None:
        labels = {"kubernetes.io/hostname": name}
        if control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
        self.nodes[name] = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels, "annotations": {}},
            "spec": {},
            "status": {
                "conditions": [
                    {
                        "type": "MemoryPressure",
                        "status": "False",
                        "reason": "KubeletHasSufficientMemory",
                    },
                    {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": f"boot-{name}",
                    "containerRuntimeVersion": "containerd://1.7.12",
                    "kernelVersion": "6.8.0-45-generic",
                    "kubeProxyVersion": version,
                    "kubeletVersion": version,
                    "machineID": f"machine-{name}",
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 24.04.1 LTS",
                    "systemUUID": f"uuid-{name}",
                },
            },
        }

    def set_kubelet(self, name: str, version: str) -> None:
        self.nodes[name]["status"]["nodeInfo"]["kubeletVersion"] = version

    def set_ready(self, name: str, ready: bool) -> None:
        for condition in self.nodes[name]["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition["status"] = "True" if ready else "False"

    def add_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        owner: str = "ReplicaSet",
        mirror: bool = False,
    ) -> None:
        annotations = {"kubernetes.io/config.mirror": "abc"} if mirror else {}
        owners = [] if mirror else [
            {"apiVersion": "apps/v1", "kind": owner, "name": f"{name}-owner", "uid": "u", "controller": True}
        ]  # fmt: skip
        self.pods[(namespace, name)] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": annotations,
                "ownerReferences": owners,
            },
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"},
        }

    async def start(self, tls_dir: Path | None = None) -> None:
        """`tls_dir` (with `pki`): where the server's certificate files are written."""
        if self.pki is not None:
            assert tls_dir is not None, "a TLS stand-in needs a directory for its certificates"
            self._tls = self.pki.server_context(tls_dir)
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/v1/nodes", self._list_nodes)
        app.router.add_get("/api/v1/nodes/{name}", self._read_node)
        app.router.add_patch("/api/v1/nodes/{name}", self._patch_node)
        app.router.add_delete("/api/v1/nodes/{name}", self._delete_node)
        app.router.add_get("/api/v1/pods", self._list_pods)
        app.router.add_post("/api/v1/namespaces/{namespace}/pods/{name}/eviction", self._evict)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._tls).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.pki is not None:
            # The TLS handshake already required a certificate of the cluster CA.
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            if not peer:
                return _status(401, "Unauthorized", "Unauthorized")
        elif request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    async def _list_nodes(self, request: web.Request) -> web.Response:
        self.log.append("list nodes")
        return web.json_response(
            {
                "kind": "NodeList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": list(self.nodes.values()),
            }
        )

    async def _read_node(self, request: web.Request) -> web.Response:
        node = self.nodes.get(request.match_info["name"])
        if node is None:
            return _not_found("nodes", request.match_info["name"])
        return web.json_response(node)

    async def _patch_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if request.content_type != STRATEGIC_MERGE:
            return _status(415, "UnsupportedMediaType", f"unsupported {request.content_type}")
        node = self.nodes.get(name)
        if node is None:
            return _not_found("nodes", name)
        patch = await request.json()
        _merge(node, patch)
        self.log.append(f"patch {name} {json.dumps(patch, sort_keys=True)}")
        return web.json_response(node)

    async def _delete_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.nodes.pop(name, None) is None:
            return _not_found("nodes", name)
        self.log.append(f"delete {name}")
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    async def _list_pods(self, request: web.Request) -> web.Response:
        selector = request.query.get("fieldSelector", "")
        key, _, value = selector.partition("=")
        assert key == "spec.nodeName", f"unexpected field selector {selector!r}"
        items = [p for p in self.pods.values() if p["spec"]["nodeName"] == value]
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        )

    async def _evict(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await request.json()
        assert body["apiVersion"] == "policy/v1" and body["kind"] == "Eviction", body
        assert body["metadata"] == {"name": name, "namespace": namespace}, body
        if (namespace, name) not in self.pods:
            return _not_found("pods", name)
        for budget in self.budgets:
            if name in budget.pods and (budget.refusals is None or budget.refusals > 0):
                if budget.refusals is not None:
                    budget.refusals -= 1
                self.log.append(f"refuse {namespace}/{name}")
                return _too_many_requests(budget)
        del self.pods[(namespace, name)]
        self.log.append(f"evict {namespace}/{name}")
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            status=201,
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge of maps: null deletes a key, maps merge, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=code)


def _not_found(kind: str, name: str) -> web.Response:
    return _status(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


def _too_many_requests(budget: Budget) -> web.Response:
    cause = {
        "reason": "DisruptionBudget",
        "message": f"The disruption budget {budget.name} needs {budget.expected} healthy pods "
        f"and has {budget.expected} currently",
    }
    return _status(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        {"causes": [cause]},
    )
