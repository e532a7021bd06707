"""Private cloud gateways as users see them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.cluster import DNS_LABEL
from domain.gateway import GatewayStatus, ProxySettings


class GatewayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    proxy: ProxySettings = Field(
        default_factory=ProxySettings, description="inherited by every cluster it deploys"
    )
    token_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="how long the registration token works"
    )


class GatewayReplicaPublic(BaseModel):
    replica_id: str
    version: str
    last_seen: datetime
    maas_reachable: dict[str, bool] = Field(default_factory=dict)


class GatewayPublic(BaseModel):
    id: str
    name: str
    system: bool = Field(description="the control plane's own gateway (self-hosted mode)")
    task_queue: str
    status: GatewayStatus
    status_detail: str = Field(description="why the status is what it is")
    version: str | None = None
    replicas: int = Field(description="live workers polling the gateway's queue")
    replica_heartbeats: list[GatewayReplicaPublic] = Field(default_factory=list)
    last_seen: datetime | None = None
    hostname: str | None = None
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    created_at: datetime | None = None
    registered_at: datetime | None = None
    revoked_at: datetime | None = Field(
        default=None, description="its credential no longer works (front door, heartbeats)"
    )


class GatewayCreated(BaseModel):
    """Answer of POST /v1/gateways: the token is shown once and works once."""

    gateway: GatewayPublic
    registration_token: str
    expires_at: datetime
    register_command: str = Field(description="run this on the gateway host")


class RegistrationTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="how long the registration token works"
    )


class GatewayList(BaseModel):
    items: list[GatewayPublic]
