from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from runtime.codec import CodecKeyError, EncryptionCodec, new_key_spec, parse_key


async def test_round_trip_hides_the_plaintext() -> None:
    codec = EncryptionCodec([new_key_spec("a")])
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"maas-key"')
    [encrypted] = await codec.encode([plain])
    assert b"maas-key" not in encrypted.SerializeToString()
    assert encrypted.metadata["encryption-key-id"] == b"a"
    assert await codec.decode([encrypted]) == [plain]


async def test_rotation_decrypts_payloads_of_the_old_key() -> None:
    old, new = new_key_spec("old"), new_key_spec("new")
    [encrypted] = await EncryptionCodec([old]).encode([Payload(data=b"x")])
    rotated = EncryptionCodec([new, old])
    assert (await rotated.decode([encrypted]))[0].data == b"x"
    [fresh] = await rotated.encode([Payload(data=b"y")])
    assert fresh.metadata["encryption-key-id"] == b"new"


async def test_unknown_key_and_tampering_are_refused() -> None:
    [encrypted] = await EncryptionCodec([new_key_spec("a")]).encode([Payload(data=b"x")])
    with pytest.raises(CodecKeyError, match="unknown codec key 'a'"):
        await EncryptionCodec([new_key_spec("b")]).decode([encrypted])
    codec = EncryptionCodec([new_key_spec("a")])
    [mine] = await codec.encode([Payload(data=b"x")])
    mine.data = mine.data[:-1] + bytes([mine.data[-1] ^ 1])
    with pytest.raises(InvalidTag):
        await codec.decode([mine])


def test_malformed_keys_say_what_is_expected() -> None:
    with pytest.raises(CodecKeyError, match="key-id:base64"):
        parse_key("nocolon")
    with pytest.raises(CodecKeyError, match="32 bytes"):
        parse_key("k:AAAA")
