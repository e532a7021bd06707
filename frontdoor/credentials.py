"""Who is calling: the gateway whose registration secret the call carries.

The secret travels as `authorization: Bearer <gateway secret>` metadata (the Temporal SDK's
`api_key`). The store is the truth; a verdict is cached for at most `ttl` seconds, which is
the bound on how long a revoked gateway keeps working on a replica that saw it recently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from store.db import SessionFactory
from store.models import Gateway
from store.secrets import hash_token


class Unauthenticated(Exception):
    """No credential, or one the store does not know (or has revoked)."""


@dataclass(frozen=True)
class GatewayCaller:
    gateway_id: str
    project_id: str


def bearer_secret(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, secret = value.partition(" ")
            if scheme.lower() == "bearer" and secret:
                return secret.strip()
    raise Unauthenticated(
        "missing credentials: connect with the gateway secret from registration "
        "(metadata `authorization: Bearer <gateway secret>`)"
    )


class GatewayAuthenticator:
    def __init__(self, sessions: SessionFactory, ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[float, GatewayCaller]] = {}

    async def authenticate(self, secret: str) -> GatewayCaller:
        digest = hash_token(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            row = await session.scalar(
                select(Gateway).where(Gateway.secret_hash == digest, Gateway.revoked_at.is_(None))
            )
        if row is None:
            self._cache.pop(digest, None)
            raise Unauthenticated("unknown or revoked gateway secret; register the gateway again")
        caller = GatewayCaller(gateway_id=row.id, project_id=row.project_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, caller)
        return caller
