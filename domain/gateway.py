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
