"""A small typed client for the metalgate HTTP API, shared by the CLI, the demo and benchmarks.

Every method maps to one route and returns the decoded JSON body. Any non-2xx answer raises
`ApiError` carrying the status and the API's `detail`; a transport failure raises
`ApiUnreachableError`, so callers can tell "the API said no" from "no API answered".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from domain.cluster import ClusterSpec

Json = dict[str, Any]

DEFAULT_TIMEOUT = 30.0
PAGE_SIZE = 100


class ApiError(Exception):
    """The API refused a request: its `detail`, and `errors` naming the offending fields."""

    def __init__(
        self,
        status: int,
        detail: Any,
        *,
        errors: list[Json] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.method = method
        self.path = path
        super().__init__(f"{method} {path} -> {status}: {self.message}")

    @property
    def message(self) -> str:
        """The detail and every field error on one line."""
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        text = format_detail(self.detail)
        return f"{text} ({fields})" if fields and fields not in text else text


class ApiUnreachableError(ApiError):
    """No answer from the API at all (status 0)."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(0, f"cannot reach the metalgate API at {url}: {cause}")
        self.url = url


def format_detail(detail: Any) -> str:
    """One readable line from FastAPI's detail, which is a string or a list of field errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class ApiClient:
    """Synchronous client; one instance per CLI invocation or per benchmark thread."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        # Loading the CA bundle is a tenth of a short command's time, and TLS is only ever
        # negotiated with an https API: requests take paths relative to the base URL and no
        # redirect is followed, so a client of an http:// API never opens a TLS connection.
        verify = self.base_url.startswith("https://")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON body, or None for an empty answer."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, exc) from exc
        if response.is_error:
            detail, errors = _error_body(response)
            raise ApiError(response.status_code, detail, errors=errors, method=method, path=path)
        if not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text
        return response.json()

    # health

    def health(self) -> Json:
        return self.request("GET", "/healthz")

    # projects and keys

    def create_project(self, name: str) -> Json:
        return self.request("POST", "/v1/projects", json={"name": name})

    def list_projects(self) -> list[Json]:
        return self.request("GET", "/v1/projects")

    def create_api_key(self, project_id: str, *, name: str, role: str) -> Json:
        body = {"name": name, "role": role}
        return self.request("POST", f"/v1/projects/{project_id}/api-keys", json=body)

    def resolve(self, collection: str, ref: str) -> str:
        """The id of the item of `/v1/<collection>` whose id, else name, is `ref`; an unknown
        ref is passed on as it is, for the API's 404 to name."""
        items = list(self._paged(f"/v1/{collection}"))
        for key in ("id", "name"):
            for item in items:
                if item.get(key) == ref:
                    return str(item["id"])
        return ref

    # gateways

    def create_gateway(self, name: str, **extra: Any) -> Json:
        return self.request("POST", "/v1/gateways", json={"name": name, **extra})

    def list_gateways(self) -> list[Json]:
        return list(self._paged("/v1/gateways"))

    def get_gateway(self, gateway_id: str) -> Json:
        return self.request("GET", f"/v1/gateways/{gateway_id}")

    def delete_gateway(self, gateway_id: str) -> None:
        self.request("DELETE", f"/v1/gateways/{gateway_id}")

    # cloud accounts

    def create_account(
        self,
        *,
        name: str,
        maas_url: str,
        maas_api_key: str,
        gateway_id: str | None = None,
        use_system_gateway: bool = False,
    ) -> Json:
        body: Json = {"name": name, "maas_url": maas_url, "maas_api_key": maas_api_key}
        if use_system_gateway:
            body["use_system_gateway"] = True
        else:
            body["gateway_id"] = gateway_id
        return self.request("POST", "/v1/cloud-accounts", json=body)

    def move_account(
        self,
        account_id: str,
        *,
        maas_api_key: str,
        gateway_id: str | None = None,
        use_system_gateway: bool = False,
    ) -> Json:
        body: Json = {"maas_api_key": maas_api_key}
        if use_system_gateway:
            body["use_system_gateway"] = True
        else:
            body["gateway_id"] = gateway_id
        return self.request("PATCH", f"/v1/cloud-accounts/{account_id}", json=body)

    def list_accounts(self) -> list[Json]:
        return list(self._paged("/v1/cloud-accounts"))

    def get_account(self, account_id: str) -> Json:
        return self.request("GET", f"/v1/cloud-accounts/{account_id}")

    def delete_account(self, account_id: str) -> None:
        self.request("DELETE", f"/v1/cloud-accounts/{account_id}")

    # clusters

    def create_cluster(self, spec: ClusterSpec, *, cloud_account_id: str) -> Json:
        body = {**spec.model_dump(mode="json"), "cloud_account_id": cloud_account_id}
        return self.request("POST", "/v1/clusters", json=body)

    def plan_cluster(self, spec: ClusterSpec, *, cloud_account_id: str) -> Json:
        body = {**spec.model_dump(mode="json"), "cloud_account_id": cloud_account_id}
        return self.request("POST", "/v1/clusters/plan", json=body)

    def list_clusters(self, *, phase: str | None = None) -> list[Json]:
        return list(self._paged("/v1/clusters", {"phase": phase}))

    def get_cluster(self, cluster_id: str) -> Json:
        return self.request("GET", f"/v1/clusters/{cluster_id}")

    def delete_cluster(self, cluster_id: str, *, force: bool = False) -> Json:
        params = {"force": "true"} if force else None
        return self.request("DELETE", f"/v1/clusters/{cluster_id}", params=params)

    def kubeconfig(self, cluster_id: str) -> str:
        body = self.request("GET", f"/v1/clusters/{cluster_id}/kubeconfig")
        return str(body["kubeconfig"])

    def upgrade_cluster(self, cluster_id: str, *, kubernetes_version: str) -> Json:
        body = {"kubernetes_version": kubernetes_version}
        return self.request("POST", f"/v1/clusters/{cluster_id}/upgrade", json=body)

    def scale_cluster(
        self, cluster_id: str, *, pool: str, count: int, dry_run: bool = False
    ) -> Json:
        body = {"pool": pool, "count": count}
        params = {"dry_run": "true"} if dry_run else None
        return self.request("POST", f"/v1/clusters/{cluster_id}/scale", json=body, params=params)

    def repave_cluster(
        self, cluster_id: str, *, node: str | None = None, pool: str | None = None
    ) -> Json:
        body = {"node": node} if node is not None else {"pool": pool}
        return self.request("POST", f"/v1/clusters/{cluster_id}/repave", json=body)

    def node_action(self, cluster_id: str, node: str, action: str) -> Json:
        """Cordon, drain or uncordon one node."""
        path = f"/v1/clusters/{cluster_id}/nodes/{quote(node, safe='')}/{action}"
        return self.request("POST", path)

    def pause_cluster(self, cluster_id: str) -> Json:
        return self.request("POST", f"/v1/clusters/{cluster_id}/pause")

    def resume_cluster(self, cluster_id: str) -> Json:
        return self.request("POST", f"/v1/clusters/{cluster_id}/resume")

    def cluster_nodes(self, cluster_id: str) -> list[Json]:
        return list(self.request("GET", f"/v1/clusters/{cluster_id}/nodes")["items"])

    def cluster_events(self, cluster_id: str, *, after: int = 0) -> list[Json]:
        """Events with an id above `after`, oldest first; the route pages by id, not offset."""
        events: list[Json] = []
        while True:
            params = {"after": after, "limit": PAGE_SIZE}
            page: list[Json] = self.request(
                "GET", f"/v1/clusters/{cluster_id}/events", params=params
            )["items"]
            events += page
            if len(page) < PAGE_SIZE:
                return events
            after = page[-1]["id"]

    def _paged(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Json]:
        """Every item of a list route; routes that answer a `total` are followed page by page."""
        offset = 0
        while True:
            body = self.request(
                "GET", path, params={**(params or {}), "limit": PAGE_SIZE, "offset": offset}
            )
            items: list[Json] = body.get("items", [])
            yield from items
            offset += len(items)
            # Without a total the route is not paginated: the first answer holds everything.
            if "total" not in body or not items or offset >= body["total"]:
                return


def _error_body(response: httpx.Response) -> tuple[Any, list[Json]]:
    """`detail` and field `errors` of an error answer; a proxy's HTML page becomes its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase, []
    if isinstance(body, dict) and "detail" in body:
        errors = body.get("errors")
        return body["detail"], errors if isinstance(errors, list) else []
    return body, []
