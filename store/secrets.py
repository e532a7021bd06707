"""Secrets at rest (encrypted, or sealed to a gateway) and credentials (only their hash)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken

from domain.maas import MaasAccount, maas_key_purpose
from domain.sealing import key_fingerprint, seal
from runtime.settings import Settings, development_secret
from store.models import CloudAccount


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


def seal_maas_key(account: CloudAccount, public_key: str, api_key: str) -> None:
    """Keep only `api_key` sealed to the gateway holding `public_key`, and its fingerprint."""
    account.maas_api_key_sealed = seal(public_key, api_key, maas_key_purpose(account.maas_url))
    account.maas_api_key_fingerprint = key_fingerprint(api_key)
    account.maas_api_key_enc = ""


def maas_account(account: CloudAccount, box: SecretBox) -> MaasAccount:
    """What workflows carry for `account`: the sealed key; for an account stored before
    sealing (its gateway has no sealing key yet), the key as before."""
    if account.maas_api_key_sealed:
        return MaasAccount(url=account.maas_url, sealed_api_key=account.maas_api_key_sealed)
    return MaasAccount(url=account.maas_url, api_key=box.decrypt(account.maas_api_key_enc))


def seal_unsealed_accounts(
    accounts: Sequence[CloudAccount], box: SecretBox, public_key: str
) -> int:
    """Migrate accounts stored before sealing to `public_key` (their gateway's, just
    registered); answers how many were sealed."""
    count = 0
    for account in accounts:
        if not account.maas_api_key_sealed and account.maas_api_key_enc:
            seal_maas_key(account, public_key, box.decrypt(account.maas_api_key_enc))
            count += 1
    return count
