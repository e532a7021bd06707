"""The kubeadm bootstrap token that joining nodes authenticate with, and the certificate key."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TOKEN_PATTERN = r"^[a-z0-9]{6}\.[a-z0-9]{16}$"
_ALPHABET = string.ascii_lowercase + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


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


def new_bootstrap_token(ttl: timedelta, now: datetime) -> BootstrapToken:
    return BootstrapToken(value=f"{_random(6)}.{_random(16)}", expires_at=now + ttl)


def new_certificate_key() -> str:
    """The AES-256 key kubeadm encrypts uploaded control-plane certificates with: 32 bytes, hex."""
    return secrets.token_hex(32)
