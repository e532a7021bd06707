"""Task tokens bound to the gateway they were handed to, checkable on any replica.

A wrapped token is `v1 || HMAC(key, gateway id || token) || len(gateway id) || gateway id ||
token`: a replica that never saw the poll can still tell whose token it is, and a gateway
cannot present another gateway's token (nor forge one) without the front door's key.
"""

from __future__ import annotations

import hashlib
import hmac

VERSION = b"\x01"
MAC_SIZE = 32


class TokenRefused(Exception):
    """A task token that this gateway was not given."""


class TaskTokenSealer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the front door's token key must be at least 16 bytes")
        self._key = key

    def _mac(self, gateway_id: bytes, token: bytes) -> bytes:
        message = len(gateway_id).to_bytes(1, "big") + gateway_id + token
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def wrap(self, gateway_id: str, token: bytes) -> bytes:
        gid = gateway_id.encode()
        if len(gid) > 255:
            raise ValueError("gateway id too long for a task token")
        return VERSION + self._mac(gid, token) + len(gid).to_bytes(1, "big") + gid + token

    def unwrap(self, gateway_id: str, wrapped: bytes) -> bytes:
        """The upstream token, if `wrapped` was handed to `gateway_id`; else TokenRefused."""
        head = len(VERSION) + MAC_SIZE
        if len(wrapped) < head + 1 or wrapped[:1] != VERSION:
            raise TokenRefused("not a task token the front door handed out")
        mac = wrapped[1:head]
        size = wrapped[head]
        gid = wrapped[head + 1 : head + 1 + size]
        token = wrapped[head + 1 + size :]
        if not hmac.compare_digest(mac, self._mac(gid, token)):
            raise TokenRefused("task token altered or not issued by this front door")
        if gid != gateway_id.encode():
            raise TokenRefused("task token was handed to another gateway")
        return token
