"""Gateway identity and the proxy settings clusters inherit from it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class GatewayStatus(StrEnum):
    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"


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
    """What the control plane hands a gateway at registration; kept in its config file."""

    gateway_id: str
    name: str
    task_queue: str
    api_url: str
    gateway_secret: str = Field(repr=False, description="authenticates heartbeats")
    temporal_address: str
    temporal_namespace: str
    codec_keys: list[str] = Field(repr=False)
    proxy: ProxySettings = Field(default_factory=ProxySettings)


class GatewayHeartbeat(BaseModel):
    """Sent every few seconds by each gateway replica (Bearer gateway_secret)."""

    replica_id: str
    version: str
    maas_reachable: dict[str, bool] = Field(
        default_factory=dict, description="MAAS URL -> reachable from this gateway"
    )
