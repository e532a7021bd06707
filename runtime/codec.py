"""AES-GCM payload codec: every payload in Temporal history is ciphertext.

Keys are `key-id:base64(32 bytes)`; the first key encrypts, every key decrypts, so a key
can be rotated by putting the new one first and keeping the old one until histories age out.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """A codec key is malformed or a payload names a key we do not hold."""


def parse_key(spec: str) -> tuple[str, bytes]:
    key_id, sep, b64 = spec.partition(":")
    if not sep or not key_id:
        raise CodecKeyError("codec key must look like `key-id:base64-of-32-bytes`")
    try:
        key = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise CodecKeyError(f"codec key {key_id!r} is not valid base64") from exc
    if len(key) != 32:
        raise CodecKeyError(f"codec key {key_id!r} must be 32 bytes, got {len(key)}")
    return key_id, key


def new_key_spec(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, key_specs: Sequence[str]) -> None:
        if not key_specs:
            raise CodecKeyError("at least one codec key is needed")
        parsed = [parse_key(s) for s in key_specs]
        self._encrypt_id = parsed[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in parsed}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        data = self._ciphers[self._encrypt_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._encrypt_id.encode()},
            data=nonce + data,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with unknown codec key {key_id!r}")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        return Payload.FromString(plain)
