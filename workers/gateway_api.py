"""The gateway's two calls to the control-plane API: register once, then heartbeat."""

from __future__ import annotations

import asyncio
import logging
import socket
from importlib.metadata import PackageNotFoundError, version

import httpx

from activities.maas_session import MaasSessions
from domain.gateway import GatewayHeartbeat, GatewayIdentity, GatewayRegistration
from domain.sealing import SealingKeyPair

log = logging.getLogger(__name__)


def gateway_version() -> str:
    try:
        return version("metalgate")
    except PackageNotFoundError:  # running from a source checkout
        return "0.0.0+source"


class RegistrationError(Exception):
    """The API refused the registration token (or could not be reached)."""


async def register_gateway(
    api_url: str, token: str, *, keys: SealingKeyPair, http_proxy: str | None = None
) -> GatewayIdentity:
    """Exchange a one-time registration token for this gateway's identity; sends only the
    public half of `keys`."""
    registration = GatewayRegistration(
        token=token,
        hostname=socket.gethostname(),
        version=gateway_version(),
        sealing_public_key=keys.public_key,
    )
    url = f"{api_url.rstrip('/')}/v1/gateways/register"
    try:
        async with httpx.AsyncClient(proxy=http_proxy, timeout=30.0) as http:
            response = await http.post(url, json=registration.model_dump(mode="json"))
    except httpx.HTTPError as error:
        raise RegistrationError(f"could not reach {url}: {error}") from None
    if response.status_code >= 400:
        raise RegistrationError(
            f"{url} refused the registration (HTTP {response.status_code}): {response.text[:300]}"
        )
    return GatewayIdentity.model_validate(response.json())


class HeartbeatSender:
    """POSTs a GatewayHeartbeat every `interval` seconds; failures are logged, never fatal."""

    def __init__(
        self,
        identity: GatewayIdentity,
        *,
        replica_id: str,
        sessions: MaasSessions,
        interval: float,
        http_proxy: str | None = None,
    ) -> None:
        self._url = f"{identity.api_url.rstrip('/')}/v1/gateways/{identity.gateway_id}/heartbeat"
        self._secret = identity.gateway_secret
        self._replica_id = replica_id
        self._sessions = sessions
        self._interval = interval
        self._http_proxy = http_proxy
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(proxy=self._http_proxy, timeout=10.0) as http:
            while not stop.is_set():
                await self.send_once(http)
                try:
                    await asyncio.wait_for(stop.wait(), self._interval)
                except TimeoutError:
                    pass

    async def send_once(self, http: httpx.AsyncClient) -> bool:
        heartbeat = GatewayHeartbeat(
            replica_id=self._replica_id,
            version=gateway_version(),
            maas_reachable=await self._sessions.probe(),
        )
        try:
            response = await http.post(
                self._url,
                json=heartbeat.model_dump(mode="json"),
                headers={"Authorization": f"Bearer {self._secret}"},
            )
        except httpx.HTTPError as error:
            log.warning("gateway heartbeat to %s failed: %s; retrying", self._url, error)
            return False
        if response.status_code >= 400:
            log.warning(
                "gateway heartbeat to %s answered HTTP %s; retrying",
                self._url,
                response.status_code,
            )
            return False
        self.sent += 1
        return True
