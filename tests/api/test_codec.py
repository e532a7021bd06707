from __future__ import annotations

import base64

from temporalio.api.common.v1 import Payload

from runtime.codec import EncryptionCodec
from tests.api.conftest import Api, ProjectKeys


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PLAIN = {
    "payloads": [{"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'"agent-token"')}]
}


async def test_encode_then_decode_roundtrip(api: Api, codec_keys: list[str]) -> None:
    headers = {**api.admin, "X-Namespace": "default"}
    encoded = (await api.http.post("/codec/encode", json=PLAIN, headers=headers)).json()
    payload = encoded["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"agent-token" not in base64.b64decode(payload["data"])
    decoded = (await api.http.post("/codec/decode", json=encoded, headers=headers)).json()
    assert decoded == PLAIN


async def test_decodes_what_workers_encrypt(api: Api, codec_keys: list[str]) -> None:
    sealed = await EncryptionCodec(codec_keys).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"kubeconfig"')]
    )
    body = {
        "payloads": [
            {
                "metadata": {k: b64(v) for k, v in sealed[0].metadata.items()},
                "data": b64(sealed[0].data),
            }
        ]
    }
    decoded = (await api.http.post("/codec/decode", json=body, headers=api.admin)).json()
    assert base64.b64decode(decoded["payloads"][0]["data"]) == b'"kubeconfig"'


async def test_only_the_operator_may_decode(api: Api, project: ProjectKeys) -> None:
    assert (await api.http.post("/codec/decode", json=PLAIN)).status_code == 401
    assert (
        await api.http.post("/codec/decode", json=PLAIN, headers=project.admin)
    ).status_code == 403


async def test_bad_payloads_are_400(api: Api) -> None:
    garbage = await api.http.post("/codec/decode", json={"payloads": "x"}, headers=api.admin)
    assert garbage.status_code == 422
    not_b64 = {"payloads": [{"metadata": {}, "data": "!!!"}]}
    answer = await api.http.post("/codec/decode", json=not_b64, headers=api.admin)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.payloads.0.data"
    tampered = {
        "payloads": [
            {
                "metadata": {
                    "encoding": b64(b"binary/encrypted"),
                    "encryption-key-id": b64(b"test1"),
                },
                "data": b64(b"0" * 40),
            }
        ]
    }
    answer = await api.http.post("/codec/decode", json=tampered, headers=api.admin)
    assert answer.status_code == 400
    unknown_key = {
        "payloads": [
            {
                "metadata": {"encoding": b64(b"binary/encrypted"), "encryption-key-id": b64(b"zz")},
                "data": b64(b"0" * 40),
            }
        ]
    }
    assert (
        await api.http.post("/codec/decode", json=unknown_key, headers=api.admin)
    ).status_code == 400
