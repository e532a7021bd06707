"""python-libmaas sessions per MAAS account, and how MAAS failures become activity errors.

We use the description-driven `bones` layer of python-libmaas (async style) for every call:
it accepts every parameter MAAS documents (allocate `pool`, `system_id`, `dry_run`, the
`agent_name` filter on reads), which the high-level objects lack, and returns plain JSON we
map onto our own models. The API key lives only inside the cached session, never in logs.

Everything MAAS answers is untrusted: each call is bounded by `call_timeout` (python-libmaas
itself would wait five minutes), and each answer is checked against the shape we read from
it, so a proxy's HTML page or a truncated document becomes a named MaasProtocolError
instead of a TypeError deep in our code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urljoin, urlparse

import aiohttp
from maas.client.bones import CallError, SessionAPI, SessionError
from maas.client.bones.helpers import RemoteError
from maas.client.utils import api_url
from maas.client.utils.creds import Credentials
from pydantic import BaseModel, ConfigDict, StrictInt, TypeAdapter, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.maas import MaasAccount
from domain.phases import Reason

log = logging.getLogger(__name__)

T = TypeVar("T")

# Anything python-libmaas or aiohttp raises when MAAS cannot be reached at all.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    SessionError,
    RemoteError,
)

HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409
HTTP_BAD_REQUEST = 400

DEFAULT_CALL_TIMEOUT = 20.0
# While a call waits, heartbeat this often so a heartbeat timeout shorter than the call
# timeout does not kill an activity whose MAAS is merely slow.
HEARTBEAT_EVERY = 2.0


# --- the shapes we read from MAAS answers --------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MachineJson(_Open):
    """The fields of a MAAS machine our code reads; everything else passes unchecked."""

    system_id: str
    status: StrictInt
    status_name: str = ""
    hostname: str = ""
    owner_data: dict[str, Any] | None = None
    tag_names: list[str] | None = None
    ip_addresses: list[str] | None = None
    cpu_count: int | None = None
    memory: int | None = None


class NamedJson(_Open):
    """A tag, zone or resource pool."""

    name: str


class VersionJson(_Open):
    version: str = ""


class Shape:
    """What a call must answer: JSON of a given form, validated but returned as is."""

    def __init__(self, description: str, adapter: TypeAdapter[Any] | None = None) -> None:
        self.description = description
        self.adapter = adapter

    def check(self, data: Any) -> str | None:
        """Why `data` does not have this shape, or None when it does."""
        if isinstance(data, bytes | bytearray):
            return f"{_body_shape(bytes(data))}, not JSON, where {self.description} was due"
        if self.adapter is None:
            return None
        try:
            self.adapter.validate_python(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            return f"JSON that is not {self.description} ({where}: {first['msg']})"
        return None


ANY_JSON = Shape("JSON")
MACHINE = Shape("a machine", TypeAdapter(MachineJson))
MACHINES = Shape("a list of machines", TypeAdapter(list[MachineJson]))
NAMED = Shape("a list of named objects", TypeAdapter(list[NamedJson]))
ONE_NAMED = Shape("a named object", TypeAdapter(NamedJson))
VERSION = Shape("a version object", TypeAdapter(VersionJson))


# --- errors --------------------------------------------------------------------------------


def scrub(text: str, account: MaasAccount) -> str:
    """`text` with the API key and each of its parts masked: MAAS answers are untrusted and
    a hostile or misconfigured server may echo our Authorization header back."""
    for secret in sorted({account.api_key, *account.api_key.split(":")}, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def maas_error(
    account: MaasAccount, message: str, kind: str, *, non_retryable: bool = False
) -> ApplicationError:
    """A named activity failure whose message never carries the account's key."""
    return ApplicationError(scrub(message, account), type=kind, non_retryable=non_retryable)


def protocol_error(account: MaasAccount, what: str, problem: str) -> ApplicationError:
    return maas_error(
        account,
        f"{account} answered {what} with {problem}; is the URL a MAAS 2.x API "
        "(and not a proxy or another service)?",
        Reason.MAAS_PROTOCOL_ERROR.value,
    )


def call_error_text(error: CallError, account: MaasAccount) -> str:
    """MAAS's own explanation (body) of a failed call, without the request it answered."""
    return scrub(bytes(error.content).decode("utf-8", "replace").strip(), account)


def _body_shape(body: bytes) -> str:
    """What an answer looked like, never what it said: whatever answers at a URL a user gave
    may be an internal service, and its body is not ours to pass on."""
    start = body.lstrip()[:1]
    kind = "an HTML page" if start == b"<" else "JSON" if start in (b"{", b"[") else "a body"
    return f"{kind} of {len(body)} bytes"


def connection_problem(error: BaseException) -> str:
    """Which step of reaching MAAS failed: DNS, TCP (refused, reset), TLS, or the wait."""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "DNS: the host name does not resolve; check the URL's host"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "TLS: the server's certificate is not trusted; check the URL or install its CA"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS: the handshake failed; is the URL's scheme (http/https) right?"
    if isinstance(error, ConnectionRefusedError) or (
        isinstance(error, aiohttp.ClientConnectorError)
        and isinstance(error.os_error, ConnectionRefusedError)
    ):
        return "connection refused: nothing listens at the URL's host and port"
    if isinstance(error, ConnectionResetError | aiohttp.ServerDisconnectedError):
        return "the connection was reset by the server"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect ({type(error.os_error).__name__}); check the host and port"
    return type(error).__name__


@contextmanager
def maas_errors(account: MaasAccount, what: str, timeout: float) -> Iterator[None]:
    """Map failures of one MAAS call (`what`, bounded by `timeout`) to named errors.

    Auth failures become non-retryable MaasAuthFailed, outages and 5xx MaasUnreachable,
    undecodable answers MaasProtocolError. Other MAAS answers (404, 409, 400) pass through
    as CallError for the caller to interpret.
    """
    try:
        yield
    except CallError as error:
        if error.status in (401, 403):
            raise maas_error(
                account,
                f"{account} rejected the API key (HTTP {error.status}); "
                "update the cloud account's key",
                Reason.MAAS_AUTH_FAILED.value,
                non_retryable=True,
            ) from None
        if error.status >= 500:
            raise maas_error(
                account,
                f"{account} answered {what} with HTTP {error.status} (a server error; "
                "retried while transient)",
                Reason.MAAS_UNREACHABLE.value,
            ) from None
        raise
    except TimeoutError:
        raise maas_error(
            account,
            f"{account} did not answer {what} within {timeout:g}s",
            Reason.MAAS_UNREACHABLE.value,
        ) from None
    except CONNECTION_ERRORS as error:
        raise maas_error(
            account,
            f"{account} is unreachable from this gateway ({what}): {connection_problem(error)}",
            Reason.MAAS_UNREACHABLE.value,
        ) from None
    except ValueError as error:
        # python-libmaas decodes a body declared JSON with json.loads: a truncated or
        # otherwise broken document lands here (JSONDecodeError, UnicodeDecodeError).
        raise protocol_error(
            account, what, f"a body that does not decode ({type(error).__name__})"
        ) from None


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """Await `call` for at most `seconds` (TimeoutError after), heartbeating while
    it waits when run in an activity that has a heartbeat timeout."""
    task = asyncio.ensure_future(call)
    beat = activity.in_activity() and activity.info().heartbeat_timeout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({task}, timeout=min(remaining, HEARTBEAT_EVERY))
            if done:
                return task.result()
            if beat:
                activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            # Retrieve whatever it ends with, so asyncio does not warn about it later.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


# --- sessions ------------------------------------------------------------------------------


class MaasSessions:
    """One bones session per (URL, key), created on first use; remembers reachability.

    `call_timeout` bounds every request to MAAS (connect included); `probe_timeout` bounds
    the heartbeat's reachability probe.
    """

    def __init__(
        self, call_timeout: float = DEFAULT_CALL_TIMEOUT, probe_timeout: float = 5.0
    ) -> None:
        self._sessions: dict[tuple[str, str], Any] = {}
        self.call_timeout = call_timeout
        self._probe_timeout = probe_timeout
        self.reachable: dict[str, bool] = {}

    async def session(self, account: MaasAccount) -> Any:
        """A connected `SessionAPI` (typed Any: its handlers are generated at run time)."""
        cache_key = (account.url, account.api_key)
        session = self._sessions.get(cache_key)
        if session is None:
            with self.track(account):
                session = await self._connect(account)
            self._sessions[cache_key] = session
            log.info("connected to %s", account)
        return session

    async def _connect(self, account: MaasAccount) -> Any:
        """What `SessionAPI.connect` does, with each way it can fail named."""
        try:
            credentials = Credentials.parse(account.api_key)
        except ValueError:
            # python-libmaas's own message quotes the key.
            raise maas_error(
                account,
                f"the API key for {account} is malformed: MAAS keys have three parts, "
                "consumer_key:token_key:token_secret",
                Reason.MAAS_AUTH_FAILED.value,
                non_retryable=True,
            ) from None
        base = str(api_url(account.url))
        description = await self.describe(account, base)
        try:
            session = SessionAPI(description, credentials)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise protocol_error(
                account,
                "describe/",
                f"JSON that is not a MAAS API description ({type(error).__name__}: {error})",
            ) from None
        session.scheme = urlparse(base).scheme
        return session

    async def describe(self, account: MaasAccount, base: str) -> Any:
        """The anonymous `describe/` document, within `call_timeout`."""

        async def fetch() -> tuple[int, str, bytes]:
            async with (
                aiohttp.ClientSession() as http,
                http.get(urljoin(base, "describe/"), headers={"Accept": "application/json"}) as r,
            ):
                return r.status, r.content_type, await r.read()

        with maas_errors(account, "describe/", self.call_timeout):
            status, content_type, body = await bounded(fetch(), self.call_timeout)
        if status >= 500:
            raise maas_error(
                account,
                f"{account} answered describe/ with HTTP {status} ({_body_shape(body)})",
                Reason.MAAS_UNREACHABLE.value,
            )
        if status != 200:
            raise protocol_error(
                account, "describe/", f"HTTP {status}, {_body_shape(body)}: not MAAS"
            )
        if not content_type.endswith("/json"):
            raise protocol_error(
                account,
                "describe/",
                f"{content_type or 'no content type'}, {_body_shape(body)}: not MAAS",
            )
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            raise protocol_error(
                account, "describe/", f"{_body_shape(body)} that does not decode as JSON"
            ) from None

    async def call(
        self, account: MaasAccount, handler: str, action: str, shape: Shape, **params: Any
    ) -> Any:
        """One MAAS API call, bounded in time, with errors mapped and the answer's shape
        checked; answers the decoded JSON."""
        session = await self.session(account)
        what = f"{handler}.{action}"
        with self.track(account):
            try:
                method = getattr(getattr(session, handler), action)
            except AttributeError:
                raise protocol_error(
                    account, "describe/", f"an API description that lacks {what}"
                ) from None
            with maas_errors(account, what, self.call_timeout):
                data = await bounded(method(**params), self.call_timeout)
            problem = shape.check(data)
            if problem is not None:
                raise protocol_error(account, what, problem)
        return data

    @contextmanager
    def track(self, account: MaasAccount) -> Iterator[None]:
        """Record whether MAAS answered like MAAS, for the gateway heartbeat."""
        try:
            yield
        except ApplicationError as error:
            if error.type in (Reason.MAAS_UNREACHABLE, Reason.MAAS_PROTOCOL_ERROR):
                self.reachable[account.url] = False
            raise
        except CallError:
            self.reachable[account.url] = True  # MAAS answered, with an error of its own.
            raise
        self.reachable[account.url] = True

    async def probe(self) -> dict[str, bool]:
        """Re-check every MAAS seen so far with the anonymous `describe/` call."""

        async def one(url: str) -> None:
            anonymous = MaasAccount(url=url, api_key="")
            try:
                await asyncio.wait_for(
                    self.describe(anonymous, str(api_url(url))), self._probe_timeout
                )
            except (ApplicationError, TimeoutError):
                self.reachable[url] = False
            else:
                self.reachable[url] = True

        await asyncio.gather(*(one(url) for url in list(self.reachable)))
        return dict(self.reachable)
