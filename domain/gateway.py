"""Gateway identity and the proxy settings clusters inherit from it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class GatewayStatus(StrEnum):
    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"


class ProxySettings(BaseModel):
    """HTTP(S) proxy of the private network; rendered into cloud-init for every node."""

    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: list[str] = Field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.http_proxy or self.https_proxy)


class GatewayRegistration(BaseModel):
    """Sent once by `metalgate gateway register` with the one-time token."""

    token: str = Field(repr=False)
    hostname: str
    version: str


class GatewayIdentity(BaseModel):
    """What the control plane hands a gateway at registration; kept in its config file.

    Only what a worker of its own queue needs: the front door (never Temporal itself), the
    secret that authenticates it there and to the API, and the active payload codec key.
    """

    gateway_id: str
    name: str
    task_queue: str
    api_url: str
    gateway_secret: str = Field(
        repr=False, description="authenticates heartbeats and front-door calls"
    )
    frontdoor_address: str = Field(description="host:port of the front door (gRPC over TLS)")
    frontdoor_ca_pem: str | None = Field(
        default=None, description="certificate to trust for the front door; None: system roots"
    )
    temporal_namespace: str
    codec_keys: list[str] = Field(repr=False, description="the active codec key only")
    proxy: ProxySettings = Field(default_factory=ProxySettings)


class GatewayHeartbeat(BaseModel):
    """Sent every few seconds by each gateway replica (Bearer gateway_secret)."""

    replica_id: str
    version: str
    maas_reachable: dict[str, bool] = Field(
        default_factory=dict, description="MAAS URL -> reachable from this gateway"
    )
