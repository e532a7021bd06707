"""A PCG's config file: the identity the control plane issued plus this site's local options.

Written once by `metalgate gateway register`, read by every `metalgate gateway run` replica.
It holds the gateway secret, its codec key and the private half of its sealing key pair, so
it is created readable only by its owner (0600) and never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr

from domain.gateway import GatewayIdentity
from domain.sealing import SealingKeyPair
from runtime.settings import Settings


class GatewayConfig(GatewayIdentity):
    """GatewayIdentity as issued, plus how this site reaches the outside world."""

    http_proxy: str | None = Field(
        default=None, description="proxy URL for HTTP calls to the API (register, heartbeat)"
    )
    temporal_proxy: str | None = Field(
        default=None, description="host:port of an HTTP CONNECT proxy for the Temporal gRPC link"
    )
    sealing_private_key: str | None = Field(
        default=None,
        repr=False,
        description="X25519 private key made at registration; opens what is sealed to this "
        "gateway. None in a config registered before sealing: register again.",
    )

    def sealing_keys(self) -> SealingKeyPair | None:
        if self.sealing_private_key is None:
            return None
        return SealingKeyPair.from_private_key(self.sealing_private_key)

    def temporal_settings(self) -> Settings:
        """Settings for runtime.temporal.connect(): the front door, TLS, the gateway secret.

        `model_construct` on purpose: a gateway has none of the control plane's secrets, so
        the control plane's production checks (store key, ...) must not run here.
        """
        return Settings.model_construct(
            temporal_address=self.frontdoor_address,
            temporal_namespace=self.temporal_namespace,
            temporal_tls=True,
            temporal_tls_ca_file=None,
            temporal_tls_cert_file=None,
            temporal_tls_key_file=None,
            temporal_tls_ca_pem=self.frontdoor_ca_pem,
            temporal_api_key=SecretStr(self.gateway_secret),
        )


def default_config_path() -> Path:
    return Path(os.environ.get("METALGATE_GATEWAY_CONFIG", "~/.config/metalgate/gateway.json"))


def write_config(path: Path, config: GatewayConfig) -> None:
    """Write atomically with mode 0600, so the secret is never readable by others."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(config.model_dump_json(indent=2))
    os.chmod(partial, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
    os.replace(partial, path)


def load_config(path: Path) -> GatewayConfig:
    path = path.expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"no gateway config at {path}; run `metalgate gateway register` first"
        )
    return GatewayConfig.model_validate_json(path.read_text())
