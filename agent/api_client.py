"""The agent's only link to the control plane: outbound HTTP to the agent routes."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import aiohttp
import httpx

from agent.outbox import Report, ReportKind
from domain.agent_wire import AgentAck, AgentCommandList, CommandResult
from domain.gateway import ProxySettings

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/v1/agent/heartbeat"
STATUS_PATH = "/v1/agent/status"
COMMANDS_PATH = "/v1/agent/commands"
IDEMPOTENCY_HEADER = "Idempotency-Key"

MAX_KEY = 128
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")

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


class HttpAnswer(NamedTuple):
    status: int
    body: bytes


# One HTTP exchange: (method, url, headers, json body) -> answer; raises ApiUnavailable
# when nothing came back. The agent uses httpx; the fleet uses aiohttp, whose client keeps
# up with thousands of requests a second where httpx's pool does not.
Transport = Callable[[str, str, dict[str, str], object], Awaitable[HttpAnswer]]


def httpx_transport(client: httpx.AsyncClient) -> Transport:
    async def exchange(method: str, url: str, headers: dict[str, str], body: object) -> HttpAnswer:
        try:
            response = await client.request(method, url, headers=headers, json=body)
        except httpx.HTTPError as error:
            raise ApiUnavailable(f"{method} {url}: {type(error).__name__}") from error
        return HttpAnswer(response.status_code, response.content)

    return exchange


def aiohttp_transport(session: aiohttp.ClientSession) -> Transport:
    async def exchange(method: str, url: str, headers: dict[str, str], body: object) -> HttpAnswer:
        try:
            async with session.request(method, url, headers=headers, json=body) as response:
                return HttpAnswer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ApiUnavailable(f"{method} {url}: {type(error).__name__}") from error

    return exchange


class AgentApi:
    """Typed calls to the agent routes with one cluster's token."""

    def __init__(self, transport: Transport, api_url: str, agent_token: str) -> None:
        self._exchange = transport
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {agent_token}"}

    async def send(self, report: Report) -> AgentAck:
        headers = {**self._headers, IDEMPOTENCY_HEADER: report.key}
        body = report.body.model_dump(mode="json")
        answer = await self._request("POST", report.path, headers, body)
        if answer.status >= 400:
            raise ApiRejected(f"{report.kind} refused with {answer.status}: {answer.body[:200]!r}")
        return AgentAck.model_validate_json(answer.body)

    async def commands(self, node: str | None = None) -> AgentCommandList:
        """The open commands; `node` (this agent's hostname) gets only those it should run."""
        path = f"{COMMANDS_PATH}?node={quote(node, safe='')}" if node else COMMANDS_PATH
        answer = await self._request("GET", path, self._headers, None)
        if answer.status >= 400:
            raise ApiRejected(f"commands refused with {answer.status}")
        return AgentCommandList.model_validate_json(answer.body)

    async def _request(
        self, method: str, path: str, headers: dict[str, str], body: object
    ) -> HttpAnswer:
        answer = await self._exchange(method, self._base + path, headers, body)
        if answer.status >= 500 or answer.status in RETRYABLE_STATUS:
            raise ApiUnavailable(f"{method} {path}: {answer.status}")
        return answer


def result_key(command_id: str, result: CommandResult) -> str:
    """Stable across retries and agent restarts, so the API applies each result once.

    Of the characters the API accepts in a key (letters, digits, `._:-`, at most 128).
    """
    raw = f"{command_id}:{result.state}:{result.progress}"
    key = "command:" + _KEY_UNSAFE.sub("-", raw)
    if len(key) > MAX_KEY:
        key = "command:" + hashlib.sha256(raw.encode()).hexdigest()
    return key


def result_report(command_id: str, result: CommandResult) -> Report:
    return Report(
        ReportKind.COMMAND_RESULT,
        result_path(command_id),
        result,
        key=result_key(command_id, result),
    )
