"""Temporal's remote codec protocol, so the Web UI shows decrypted payloads to operators.

POST /codec/encode and /codec/decode take `{"payloads": [...]}` in protobuf JSON (base64
metadata values and data). Only the operator key may call them: decoding reveals secrets.

The Web UI of a dev server sends no credentials, so it is given /codec/ui/<token> instead:
the token (METALGATE_UI_CODEC_TOKEN) stands for the operator key, and whoever is told the
UI's codec endpoint is, by that, an operator. Without the setting those routes do not exist.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import Operator, SettingsDep
from api.errors import responses
from api.schemas.codec import CodecBody
from runtime.codec import CodecKeyError, EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"])


def _payloads(body: CodecBody) -> list[Payload]:
    try:
        return list(json_format.ParseDict(body.model_dump(), Payloads()).payloads)
    except json_format.ParseError as exc:
        raise HTTPException(
            400, f"payloads: metadata values and data must be base64 ({exc})"
        ) from exc


def _answer(payloads: list[Payload]) -> CodecBody:
    return CodecBody.model_validate(json_format.MessageToDict(Payloads(payloads=payloads)))


def _ui_token(token: str, settings: SettingsDep) -> None:
    expected = settings.ui_codec_token
    # Bytes: compare_digest refuses non-ASCII str, and a path may carry any character.
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(404, "no such codec endpoint")


UiToken = Annotated[None, Depends(_ui_token)]


@router.post("/encode", response_model=CodecBody, responses=responses(400))
async def encode(body: CodecBody, request: Request, _: Operator) -> CodecBody:
    return await _encode(body, request)


@router.post("/decode", response_model=CodecBody, responses=responses(400))
async def decode(body: CodecBody, request: Request, _: Operator) -> CodecBody:
    return await _decode(body, request)


@router.post("/ui/{token}/encode", response_model=CodecBody, responses=responses(400))
async def ui_encode(body: CodecBody, request: Request, _: UiToken) -> CodecBody:
    return await _encode(body, request)


@router.post("/ui/{token}/decode", response_model=CodecBody, responses=responses(400))
async def ui_decode(body: CodecBody, request: Request, _: UiToken) -> CodecBody:
    return await _decode(body, request)


async def _encode(body: CodecBody, request: Request) -> CodecBody:
    codec: EncryptionCodec = request.app.state.codec
    return _answer(await codec.encode(_payloads(body)))


async def _decode(body: CodecBody, request: Request) -> CodecBody:
    codec: EncryptionCodec = request.app.state.codec
    try:
        decoded = await codec.decode(_payloads(body))
    except (CodecKeyError, ValueError) as exc:
        raise HTTPException(400, f"payloads: cannot decode ({exc})") from exc
    except Exception as exc:  # cryptography raises InvalidTag for tampered data
        raise HTTPException(
            400, "payloads: ciphertext does not authenticate with our keys"
        ) from exc
    return _answer(decoded)
