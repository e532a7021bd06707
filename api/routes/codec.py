"""Temporal's remote codec protocol, so the Web UI shows decrypted payloads to operators.

POST /codec/encode and /codec/decode take `{"payloads": [...]}` in protobuf JSON (base64
metadata values and data). Only the operator key may call them: decoding reveals secrets.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import Operator
from api.errors import responses
from runtime.codec import CodecKeyError, EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"])


async def _payloads(request: Request) -> Payloads:
    try:
        body: Any = await request.json()
        return json_format.ParseDict(body, Payloads())
    except (ValueError, json_format.ParseError, TypeError, AttributeError) as exc:
        raise HTTPException(
            400,
            f'body: expected {{"payloads": [{{"metadata": {{...}}, "data": "<base64>"}}]}} ({exc})',
        ) from exc


def _answer(payloads: list[Any]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


@router.post("/encode", responses=responses(400))
async def encode(request: Request, _: Operator) -> dict[str, Any]:
    codec: EncryptionCodec = request.app.state.codec
    return _answer(await codec.encode(list((await _payloads(request)).payloads)))


@router.post("/decode", responses=responses(400))
async def decode(request: Request, _: Operator) -> dict[str, Any]:
    codec: EncryptionCodec = request.app.state.codec
    try:
        decoded = await codec.decode(list((await _payloads(request)).payloads))
    except (CodecKeyError, ValueError) as exc:
        raise HTTPException(400, f"payloads: cannot decode ({exc})") from exc
    except Exception as exc:  # cryptography raises InvalidTag for tampered data
        raise HTTPException(
            400, "payloads: ciphertext does not authenticate with our keys"
        ) from exc
    return _answer(decoded)
