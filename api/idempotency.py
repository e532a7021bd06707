"""`Idempotency-Key`: a retried request (its first answer lost) gets the first answer again.

Only accepted answers (2xx) are kept, for `idempotency_key_ttl_seconds`; a refusal is not, so
a retry after a refusal is judged afresh. The same key with another body is refused: a key
names one request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import FieldRefused
from store.models import IdempotencyRecord
from store.types import utcnow

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class IdempotentRequest:
    scope: str
    key: str
    request_hash: str


def idempotent_request(request: Request, scope: str, body: BaseModel) -> IdempotentRequest | None:
    """The request's key (None without the header); refuses a malformed key."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if _KEY.fullmatch(key) is None:
        raise FieldRefused(
            f"header.{IDEMPOTENCY_HEADER}",
            "must be 1-128 characters of letters, digits, '.', '_', ':' or '-' (e.g. a uuid)",
        )
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    return IdempotentRequest(scope[:200], key, hashlib.sha256(canonical).hexdigest())


async def replay(session: AsyncSession, idem: IdempotentRequest | None) -> JSONResponse | None:
    """The first answer to this key, if it is remembered and unexpired."""
    if idem is None:
        return None
    record = await session.get(IdempotencyRecord, (idem.scope, idem.key))
    if record is None or record.expires_at <= utcnow():
        return None
    if record.request_hash != idem.request_hash:
        raise FieldRefused(
            f"header.{IDEMPOTENCY_HEADER}",
            "this key was used for a different request; send a new key for a new request",
        )
    return JSONResponse(
        record.response, status_code=record.status_code, headers={REPLAYED_HEADER: "true"}
    )


async def remember(
    session: AsyncSession,
    idem: IdempotentRequest | None,
    answer: BaseModel,
    ttl_seconds: float,
    status_code: int = 200,
) -> None:
    """Keep an accepted answer for the key's lifetime; drops expired keys as it goes."""
    if idem is None:
        return
    now = utcnow()
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == idem.scope, IdempotencyRecord.key == idem.key
        )
    )
    response: dict[str, Any] = answer.model_dump(mode="json")
    session.add(
        IdempotencyRecord(
            scope=idem.scope,
            key=idem.key,
            request_hash=idem.request_hash,
            status_code=status_code,
            response=response,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a concurrent retry stored the same answer first
