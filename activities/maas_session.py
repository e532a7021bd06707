"""python-libmaas sessions per MAAS account, and how MAAS failures become activity errors.

We use the description-driven `bones` layer of python-libmaas (async style) for every call:
it accepts every parameter MAAS documents (allocate `pool`, `system_id`, `dry_run`, the
`agent_name` filter on reads), which the high-level objects lack, and returns plain JSON,
which `call` parses into the models of activities.maas_answers. The API key lives only inside the cached session, never in logs.

Everything MAAS answers is untrusted: each call is bounded by `call_timeout` (python-libmaas
itself would wait five minutes), and each answer is parsed into the model we read from
it, so a proxy's HTML page or a truncated document becomes a named MaasProtocolError
instead of a TypeError deep in our code.
"""

from __future__ import annotations

import asyncio
import contextvars
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
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.maas_answers import Shape, ShapeError, body_shape
from domain.maas import MaasAccount, maas_key_purpose
from domain.phases import Reason
from domain.sealing import SealingError, SealingKeyPair
from runtime.metrics import maas_call_metrics

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
    """One bones session per (URL, key), created on first use and reused by every call;
    remembers reachability.

    Connecting reads MAAS's `describe/` document, so calls that arrive together while no
    session exists share one connect instead of each reading it. `call_timeout` bounds every
    request to MAAS (connect included); `probe_timeout` bounds the heartbeat's probe.
    """

    def __init__(
        self,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        probe_timeout: float = 5.0,
        keys: SealingKeyPair | None = None,
    ) -> None:
        self._sessions: dict[tuple[str, str], Any] = {}
        self._connecting: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.call_timeout = call_timeout
        self._probe_timeout = probe_timeout
        self._keys = keys
        self.reachable: dict[str, bool] = {}

    def open_key(self, account: MaasAccount) -> None:
        """Open the account's sealed key with this gateway's private key, into `api_key` of
        this in-memory account only (so errors about it are scrubbed of the key too)."""
        if not account.sealed_api_key:
            return  # an account stored before sealing: the key came as is
        if self._keys is None:
            raise maas_error(
                account,
                f"the API key for {account} is sealed to a gateway key, but this gateway has "
                "none: register it again (`metalgate gateway register`)",
                Reason.MAAS_AUTH_FAILED.value,
                non_retryable=True,
            )
        try:
            account.api_key = self._keys.open(account.sealed_api_key, maas_key_purpose(account.url))
        except SealingError:
            raise maas_error(
                account,
                f"the API key for {account} does not open with this gateway's key (it was "
                "sealed to another gateway, or this one registered anew): give the key again "
                "(PATCH /v1/cloud-accounts/{id} with maas_api_key)",
                Reason.MAAS_AUTH_FAILED.value,
                non_retryable=True,
            ) from None

    async def session(self, account: MaasAccount) -> Any:
        """A connected `SessionAPI` (typed Any: its handlers are generated at run time)."""
        self.open_key(account)
        cache_key = (account.url, account.api_key)
        session = self._sessions.get(cache_key)
        if session is not None:
            return session
        connecting = self._connecting.get(cache_key)
        if connecting is None:
            # Its own context: the connect serves every caller waiting on it, so it must not
            # heartbeat for (or be cancelled with) the activity that happened to start it.
            connecting = asyncio.get_running_loop().create_task(
                self._connect_once(account), context=contextvars.Context()
            )
            self._connecting[cache_key] = connecting
            connecting.add_done_callback(lambda task: self._connected(cache_key, task))
        # The connect is bounded by call_timeout; waiting on it heartbeats like a call.
        return await bounded(asyncio.shield(connecting), self.call_timeout + HEARTBEAT_EVERY)

    def _connected(self, cache_key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        self._connecting.pop(cache_key, None)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn when no caller waited

    async def _connect_once(self, account: MaasAccount) -> Any:
        with self.track(account):
            session = await self._connect(account)
        self._sessions[(account.url, account.api_key)] = session
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
                f"{account} answered describe/ with HTTP {status} ({body_shape(body)})",
                Reason.MAAS_UNREACHABLE.value,
            )
        if status != 200:
            raise protocol_error(
                account, "describe/", f"HTTP {status}, {body_shape(body)}: not MAAS"
            )
        if not content_type.endswith("/json"):
            raise protocol_error(
                account,
                "describe/",
                f"{content_type or 'no content type'}, {body_shape(body)}: not MAAS",
            )
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            raise protocol_error(
                account, "describe/", f"{body_shape(body)} that does not decode as JSON"
            ) from None

    @maas_call_metrics
    async def call(
        self, account: MaasAccount, handler: str, action: str, shape: Shape[T], **params: Any
    ) -> T:
        """One MAAS API call, bounded in time, with errors mapped; answers its typed model.

        Every call to MAAS passes here. In an activity it heartbeats first, so every
        activity shows it is alive and sees a cancel promptly.
        """
        what = f"{handler}.{action}"
        if activity.in_activity():
            activity.heartbeat(what)
        session = await self.session(account)
        with self.track(account):
            try:
                method = getattr(getattr(session, handler), action)
            except AttributeError:
                raise protocol_error(
                    account, "describe/", f"an API description that lacks {what}"
                ) from None
            with maas_errors(account, what, self.call_timeout):
                data = await bounded(method(**params), self.call_timeout)
            try:
                return shape.parse(data)
            except ShapeError as problem:
                raise protocol_error(account, what, str(problem)) from None

    @contextmanager
    def track(self, account: MaasAccount) -> Iterator[None]:
        """Record whether MAAS answered like MAAS, for the gateway heartbeat."""
        try:
            yield
        except ApplicationError as error:
            if error.type in (Reason.MAAS_UNREACHABLE.value, Reason.MAAS_PROTOCOL_ERROR.value):
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
