"""Gateway identity and the proxy settings clusters inherit from it."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.text import Hostname, Label, no_control_characters

MAX_PROXY_URL = 2048
MAX_NO_PROXY_ENTRIES = 64
# A host, a `.domain` suffix (or `*.domain`), `*`, or an IP/CIDR; an optional `:port`.
_NO_PROXY_HOST = re.compile(
    r"(\*|\*?\.?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:[0-9]{1,5})?"
)


def proxy_url(value: str) -> str:
    """An http(s) proxy URL with a host and at most a port; nothing a shell line could carry."""
    no_control_characters(value)
    fix = "write it as http://host:port or https://host:port"
    if any(c.isspace() for c in value) or any(c in value for c in "\"'`$;"):
        raise ValueError(f"a proxy URL has no spaces, quotes, '$', ';' or backslashes; {fix}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{value[:80]!r} is not a URL ({error}); {fix}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"the scheme must be http or https, not {parts.scheme!r}; {fix}")
    if not parts.hostname:
        raise ValueError(f"the proxy URL names no host; {fix}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a proxy URL has no path, query or fragment; {fix}")
    if port == 0:
        raise ValueError(f"port 0 is not a proxy port; {fix}")
    return value


def no_proxy_entry(value: str) -> str:
    """A host, domain suffix or IP/CIDR that bypasses the proxy."""
    no_control_characters(value)
    try:
        ipaddress.ip_network(value, strict=False)
        return value
    except ValueError:
        pass
    if _NO_PROXY_HOST.fullmatch(value) is None:
        raise ValueError(
            f"{value[:80]!r} is not a host, .domain, IP address or CIDR "
            "(e.g. maas.internal, .corp.example, 10.0.0.0/8)"
        )
    return value


ProxyUrl = Annotated[str, Field(max_length=MAX_PROXY_URL), AfterValidator(proxy_url)]
NoProxyEntry = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(no_proxy_entry)]


class GatewayStatus(StrEnum):
    PENDING = "pending"
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"


class ProxySettings(BaseModel):
    """HTTP(S) proxy of the private network; rendered into cloud-init for every node, so each
    value is checked here and the renderer never sees a bad one."""

    model_config = ConfigDict(extra="forbid")

    http_proxy: ProxyUrl | None = None
    https_proxy: ProxyUrl | None = None
    no_proxy: list[NoProxyEntry] = Field(default_factory=list, max_length=MAX_NO_PROXY_ENTRIES)

    @property
    def enabled(self) -> bool:
        return bool(self.http_proxy or self.https_proxy)


class GatewayRegistration(BaseModel):
    """Sent once by `metalgate gateway register` with the one-time token."""

    token: str = Field(repr=False, max_length=256)
    hostname: Hostname
    version: Label
    sealing_public_key: SealingPublicKey | None = Field(
        default=None,
        description="the gateway's X25519 public key (base64url); secrets only this gateway "
        "needs are sealed to it. Its private half never leaves the gateway.",
    )


def sealing_public_key(value: str) -> str:
    # Imported here: the agent's own wheel carries this module but not `cryptography`.
    from domain.sealing import parse_public_key

    parse_public_key(value)  # raises SealingError (a ValueError) naming what is wrong
    return value


SealingPublicKey = Annotated[str, Field(max_length=64), AfterValidator(sealing_public_key)]


class GatewayIdentity(BaseModel):
    """What the control plane hands a gateway at registration; kept in its config file.

    Only what a worker of its own queue needs: the front door (never Temporal itself), the
    secret that authenticates it there and to the API, and its own payload codec key
    (derived for this gateway: it opens only payloads bound for its queue).
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
    codec_keys: list[str] = Field(repr=False, description="this gateway's own codec key")
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    heartbeat_interval: float = Field(
        default=15.0,
        gt=0,
        description="seconds between heartbeats, the API's gateway_heartbeat_interval: it "
        "calls a gateway offline after two missed beats",
    )


class GatewayHeartbeat(BaseModel):
    """Sent every few seconds by each gateway replica (Bearer gateway_secret)."""

    replica_id: Label
    version: Label
    maas_reachable: dict[
        Annotated[str, Field(max_length=2048), AfterValidator(no_control_characters)], bool
    ] = Field(
        default_factory=dict, max_length=256, description="MAAS URL -> reachable from this gateway"
    )
