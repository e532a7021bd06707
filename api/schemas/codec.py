"""Temporal's remote codec protocol: protobuf JSON of Payloads (base64 values)."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field, field_validator


def _strict_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be standard base64 (A-Z, a-z, 0-9, +, /, = padding)") from exc
    return value


class CodecPayload(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="base64 values")
    data: str = Field(default="", description="base64")

    @field_validator("data")
    @classmethod
    def _data_base64(cls, value: str) -> str:
        return _strict_base64(value)

    @field_validator("metadata")
    @classmethod
    def _metadata_base64(cls, value: dict[str, str]) -> dict[str, str]:
        for item in value.values():
            _strict_base64(item)
        return value


class CodecBody(BaseModel):
    payloads: list[CodecPayload] = Field(default_factory=list, max_length=10_000)
