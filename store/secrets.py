"""Secrets at rest (encrypted) and credentials (only their hash is stored)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

from runtime.settings import Settings, development_secret


class SecretBox:
    """Fernet (AES-CBC + HMAC) keyed by a SHA-256 of the configured store secret."""

    def __init__(self, key_material: str) -> None:
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.store_secret_key is not None:
            return cls(settings.store_secret_key.get_secret_value())
        # Settings refuse a missing key outside development, so this is a dev install.
        return cls(development_secret(settings, "store-key"))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret does not decrypt: was the store key changed?") from exc


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a plain SHA-256 is a safe, indexable digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
