"""The kubeadm bootstrap token that joining nodes authenticate with, and the certificate key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bootstrap.token_window import derive_token, window_expiry, window_of

TOKEN_PATTERN = r"^[a-z0-9]{6}\.[a-z0-9]{16}$"


class BootstrapToken(BaseModel):
    """`<id>.<secret>` as kubeadm's bootstrap-token format requires, with its expiry."""

    model_config = ConfigDict(frozen=True)

    value: str = Field(pattern=TOKEN_PATTERN, repr=False)
    expires_at: AwareDatetime

    @property
    def token_id(self) -> str:
        return self.value.split(".", 1)[0]

    def expires_within(self, margin: timedelta, now: datetime) -> bool:
        """Does it expire before `now + margin`, i.e. too soon for a node deploying now?"""
        return self.expires_at <= now + margin


def window_token(seed: str, ttl: timedelta, now: datetime) -> BootstrapToken:
    """The token of `now`'s window: the one control-plane nodes keep in the cluster."""
    ttl_seconds = int(ttl.total_seconds())
    window = window_of(ttl_seconds, now.timestamp())
    expires = datetime.fromtimestamp(window_expiry(ttl_seconds, window), UTC)
    return BootstrapToken(value=derive_token(seed, window), expires_at=expires)


def new_token_seed() -> str:
    return secrets.token_hex(32)


def new_certificate_key() -> str:
    """The AES-256 key kubeadm encrypts uploaded control-plane certificates with: 32 bytes, hex."""
    return secrets.token_hex(32)
