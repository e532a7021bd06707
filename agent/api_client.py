"""The agent's only link to the control plane: outbound HTTP to the agent routes."""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import httpx

from agent.outbox import Report, ReportKind
from domain.agent_wire import AgentAck, AgentCommandList, AgentCommandResult
from domain.gateway import ProxySettings

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/v1/agent/heartbeat"
STATUS_PATH = "/v1/agent/status"
COMMANDS_PATH = "/v1/agent/commands"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# The API answers these when it is overloaded or restarting: worth retrying.
RETRYABLE_STATUS = frozenset({408, 425, 429})


class ApiUnavailable(Exception):
    """The API did not answer, or answered 5xx/429: keep the report and retry later."""


class ApiRejected(Exception):
    """The API refused the report for good (4xx): retrying the same body cannot help."""


def result_path(command_id: str) -> str:
    return f"{COMMANDS_PATH}/{command_id}"


def proxy_for(api_url: str, proxy: ProxySettings) -> str | None:
    """The proxy URL to reach `api_url` through, honouring no_proxy (hosts, .suffixes, CIDRs)."""
    if not proxy.enabled:
        return None
    parts = urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if any(_no_proxy_matches(host, entry.strip().lower()) for entry in proxy.no_proxy):
        return None
    if parts.scheme == "https":
        return proxy.https_proxy or proxy.http_proxy
    return proxy.http_proxy or proxy.https_proxy


def _no_proxy_matches(host: str, entry: str) -> bool:
    if not entry:
        return False
    if entry == "*":
        return True
    entry = entry.split(":", 1)[0] if entry.count(":") == 1 else entry
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    suffix = entry.lstrip(".")
    return host == suffix or host.endswith("." + suffix)


def build_http_client(
    api_url: str, proxy: ProxySettings, timeout: float = 10.0, max_connections: int = 10
) -> httpx.AsyncClient:
    """A client for one API; proxy settings come from the bootstrap, never the environment."""
    return httpx.AsyncClient(
        proxy=proxy_for(api_url, proxy),
        timeout=timeout,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


class AgentApi:
    """Typed calls to the agent routes with one cluster's token."""

    def __init__(self, client: httpx.AsyncClient, api_url: str, agent_token: str) -> None:
        self._client = client
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {agent_token}"}

    async def send(self, report: Report) -> AgentAck:
        headers = {**self._headers, IDEMPOTENCY_HEADER: report.key}
        body = report.body.model_dump(mode="json")
        response = await self._request("POST", report.path, json=body, headers=headers)
        if response.status_code >= 400:
            raise ApiRejected(
                f"{report.kind} refused with {response.status_code}: {_detail(response)}"
            )
        return AgentAck.model_validate(response.json())

    async def commands(self) -> AgentCommandList:
        response = await self._request("GET", COMMANDS_PATH, headers=self._headers)
        if response.status_code >= 400:
            raise ApiRejected(f"commands refused with {response.status_code}")
        return AgentCommandList.model_validate(response.json())

    async def _request(
        self, method: str, path: str, headers: dict[str, str], json: object = None
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method, self._base + path, headers=headers, json=json
            )
        except httpx.HTTPError as error:
            raise ApiUnavailable(f"{method} {path}: {type(error).__name__}") from error
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise ApiUnavailable(f"{method} {path}: {response.status_code}")
        return response


def result_report(command_id: str, result: AgentCommandResult) -> Report:
    return Report(ReportKind.COMMAND_RESULT, result_path(command_id), result)


def _detail(response: httpx.Response) -> str:
    # Bounded so a misbehaving server cannot flood the agent's log.
    return response.text[:200]
