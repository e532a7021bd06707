"""python-libmaas sessions per MAAS account, and how MAAS failures become activity errors.

We use the description-driven `bones` layer of python-libmaas (async style) for every call:
it accepts every parameter MAAS documents (allocate `pool`, `system_id`, `dry_run`, the
`agent_name` filter on reads), which the high-level objects lack, and returns plain JSON we
map onto our own models. The API key lives only inside the cached session, never in logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from maas.client.bones import CallError, SessionAPI, SessionError
from maas.client.bones.helpers import RemoteError, fetch_api_description
from maas.client.utils import api_url
from temporalio.exceptions import ApplicationError

from activities.models import ERR_MAAS_AUTH_FAILED, ERR_MAAS_UNREACHABLE
from domain.maas import MaasAccount

log = logging.getLogger(__name__)

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


def call_error_text(error: CallError) -> str:
    """MAAS's own explanation (body) of a failed call, without the request it answered."""
    return bytes(error.content).decode("utf-8", "replace").strip()


@contextmanager
def maas_errors(account: MaasAccount) -> Iterator[None]:
    """Turn auth failures into non-retryable MaasAuthFailed, outages into MaasUnreachable.

    Other MAAS answers (404, 409, 400) pass through for the caller to interpret.
    """
    try:
        yield
    except CallError as error:
        if error.status in (401, 403):
            raise ApplicationError(
                f"{account} rejected the API key (HTTP {error.status}); "
                "update the cloud account's key",
                type=ERR_MAAS_AUTH_FAILED,
                non_retryable=True,
            ) from None
        if error.status >= 500:
            raise ApplicationError(
                f"{account} answered HTTP {error.status}: {call_error_text(error)[:200]}",
                type=ERR_MAAS_UNREACHABLE,
            ) from None
        raise
    except CONNECTION_ERRORS as error:
        raise ApplicationError(
            f"{account} is unreachable from this gateway: {type(error).__name__}: {error}",
            type=ERR_MAAS_UNREACHABLE,
        ) from None


class MaasSessions:
    """One bones session per (URL, key), created on first use; remembers reachability."""

    def __init__(self, probe_timeout: float = 5.0) -> None:
        self._sessions: dict[tuple[str, str], Any] = {}
        self._probe_timeout = probe_timeout
        self.reachable: dict[str, bool] = {}

    async def session(self, account: MaasAccount) -> Any:
        """A connected `SessionAPI` (typed Any: its handlers are generated at run time)."""
        cache_key = (account.url, account.api_key)
        session = self._sessions.get(cache_key)
        if session is None:
            with self.track(account), maas_errors(account):
                _profile, session = await SessionAPI.connect(account.url, apikey=account.api_key)
            self._sessions[cache_key] = session
            log.info("connected to %s", account)
        return session

    @contextmanager
    def track(self, account: MaasAccount) -> Iterator[None]:
        """Record whether MAAS answered, for the gateway heartbeat."""
        try:
            yield
        except ApplicationError as error:
            if error.type == ERR_MAAS_UNREACHABLE:
                self.reachable[account.url] = False
            raise
        except CallError:
            self.reachable[account.url] = True  # MAAS answered, with an error of its own.
            raise
        self.reachable[account.url] = True

    async def probe(self) -> dict[str, bool]:
        """Re-check every MAAS seen so far with the anonymous `describe/` call."""

        async def one(url: str) -> None:
            try:
                await asyncio.wait_for(fetch_api_description(_api_url(url)), self._probe_timeout)
            except CONNECTION_ERRORS:
                self.reachable[url] = False
            else:
                self.reachable[url] = True

        await asyncio.gather(*(one(url) for url in list(self.reachable)))
        return dict(self.reachable)


def _api_url(url: str) -> str:
    """MAAS base URL -> API root, as python-libmaas's connect() derives it."""
    return str(api_url(url))
