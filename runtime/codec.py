"""AES-GCM payload codec: every payload in Temporal history is ciphertext.

Keys are `key-id:base64(32 bytes)`; the first key encrypts, every key decrypts, so a key
can be rotated by putting the new one first and keeping the old one until histories age out.

Payloads bound for a gateway's queue (`gateway.<id>`) are encrypted with a key derived from
the active key for that gateway alone (`<key-id>/gw/<id>`), and that derived key is the only
one a gateway is handed: it opens its own tasks, never another gateway's or the control
plane's. The control plane derives every gateway's key, so it (and the Web UI) still read all.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Sequence
from typing import Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from domain.naming import gateway_of_queue

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


GATEWAY_KEY_MARK = "/gw/"


def _derive(key: bytes, gateway_id: str) -> bytes:
    info = b"metalgate gateway codec key " + gateway_id.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def gateway_key_spec(master_spec: str, gateway_id: str) -> str:
    """The codec key of one gateway, derived from `master_spec`; it opens nothing else."""
    key_id, key = parse_key(master_spec)
    derived = base64.b64encode(_derive(key, gateway_id)).decode()
    return f"{key_id}{GATEWAY_KEY_MARK}{gateway_id}:{derived}"


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """With master keys (the control plane) it also encrypts for, and opens, any gateway;
    with one gateway key (a gateway) it opens only that gateway's payloads."""

    def __init__(self, key_specs: Sequence[str]) -> None:
        if not key_specs:
            raise CodecKeyError("at least one codec key is needed")
        parsed = [parse_key(s) for s in key_specs]
        self._encrypt_id = parsed[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in parsed}
        self._masters = {kid: key for kid, key in parsed if GATEWAY_KEY_MARK not in kid}

    def with_context(self, context: SerializationContext) -> Self:
        """For an activity on a gateway's queue, encrypt with that gateway's derived key."""
        if not isinstance(context, ActivitySerializationContext) or not context.activity_task_queue:
            return self
        gateway_id = gateway_of_queue(context.activity_task_queue)
        if gateway_id is None or self._encrypt_id not in self._masters:
            return self
        scoped = copy.copy(self)
        scoped._encrypt_id = self._gateway_cipher(self._encrypt_id, gateway_id)
        return scoped

    def _gateway_cipher(self, master_id: str, gateway_id: str) -> str:
        key_id = f"{master_id}{GATEWAY_KEY_MARK}{gateway_id}"
        if key_id not in self._ciphers:
            # Safe to share between copies: a derived cipher is the same for every caller.
            self._ciphers[key_id] = AESGCM(_derive(self._masters[master_id], gateway_id))
        return key_id

    def _cipher(self, key_id: str) -> AESGCM | None:
        cipher = self._ciphers.get(key_id)
        master_id, mark, gateway_id = key_id.partition(GATEWAY_KEY_MARK)
        if cipher is None and mark and gateway_id and master_id in self._masters:
            cipher = self._ciphers[self._gateway_cipher(master_id, gateway_id)]
        return cipher

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
        cipher = self._cipher(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with unknown codec key {key_id!r}")
        plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        return Payload.FromString(plain)
