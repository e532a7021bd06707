"""Secrets sealed to one gateway's key pair: only that gateway can open them.

An anonymous sealed box in the style of libsodium's `crypto_box_seal`, from `cryptography`
primitives: a fresh X25519 key pair per seal, HKDF-SHA256 over the shared secret (salted
with both public keys) to a ChaCha20-Poly1305 key, and `purpose` bound in as associated
data, so a value sealed as one account's MAAS key does not open as anything else.

The control plane holds only public keys: it can seal, never open. The gateway keeps its
private key in its local 0600 state file and never sends it.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "mgsealed.v1."
_INFO = b"metalgate sealed box v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_RAW = serialization.Encoding.Raw


class SealingError(ValueError):
    """A key or sealed value is malformed, or a sealed value does not open with this key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.encode())
    except ValueError as exc:
        raise SealingError(f"{what} is not base64") from exc


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(_RAW, serialization.PublicFormat.Raw)


def _aead_key(shared: bytes, sender: bytes, recipient: bytes) -> ChaCha20Poly1305:
    kdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=sender + recipient, info=_INFO)
    return ChaCha20Poly1305(kdf.derive(shared))


def parse_public_key(text: str) -> X25519PublicKey:
    """A gateway's public sealing key as it sends it: base64url of 32 raw bytes."""
    raw = _unb64(text, "public sealing key")
    if len(raw) != _KEY_BYTES:
        raise SealingError(f"a public sealing key is {_KEY_BYTES} bytes, got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def key_fingerprint(text: str) -> str:
    """A short digest to show for a public key or a secret, never the value itself."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


class SealingKeyPair:
    """A gateway's X25519 key pair; `private_key` is for its own state file only."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SealingKeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_key(cls, text: str) -> SealingKeyPair:
        raw = _unb64(text, "private sealing key")
        if len(raw) != _KEY_BYTES:
            raise SealingError(f"a private sealing key is {_KEY_BYTES} bytes, got {len(raw)}")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    @property
    def private_key(self) -> str:
        raw = self._private.private_bytes(
            _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return _b64(raw)

    @property
    def public_key(self) -> str:
        return _b64(_public_bytes(self._private.public_key()))

    def open(self, sealed: str, purpose: str) -> str:
        """The plaintext of `sealed`; SealingError when it was sealed to another key or for
        another purpose, or was altered."""
        if not sealed.startswith(SEALED_PREFIX):
            raise SealingError("not a sealed value (no mgsealed.v1. prefix)")
        blob = _unb64(sealed.removeprefix(SEALED_PREFIX), "sealed value")
        if len(blob) < _KEY_BYTES + _NONCE_BYTES + 16:
            raise SealingError("sealed value is truncated")
        sender = blob[:_KEY_BYTES]
        nonce = blob[_KEY_BYTES : _KEY_BYTES + _NONCE_BYTES]
        shared = self._private.exchange(X25519PublicKey.from_public_bytes(sender))
        recipient = _public_bytes(self._private.public_key())
        try:
            plain = _aead_key(shared, sender, recipient).decrypt(
                nonce, blob[_KEY_BYTES + _NONCE_BYTES :], purpose.encode()
            )
        except InvalidTag:
            raise SealingError(
                "sealed value does not open with this gateway's key: it was sealed to "
                "another gateway or for another purpose"
            ) from None
        return plain.decode()


def seal(public_key: str, plain: str, purpose: str) -> str:
    """`plain` sealed to the holder of `public_key`'s private half, bound to `purpose`."""
    recipient_key = parse_public_key(public_key)
    ephemeral = X25519PrivateKey.generate()
    sender = _public_bytes(ephemeral.public_key())
    recipient = _public_bytes(recipient_key)
    nonce = os.urandom(_NONCE_BYTES)
    box = _aead_key(ephemeral.exchange(recipient_key), sender, recipient)
    return SEALED_PREFIX + _b64(
        sender + nonce + box.encrypt(nonce, plain.encode(), purpose.encode())
    )
