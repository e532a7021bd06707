from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.converter import ActivitySerializationContext

from runtime.codec import (
    CodecKeyError,
    EncryptionCodec,
    gateway_key_spec,
    new_key_spec,
    parse_key,
)


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


def _for_queue(codec: EncryptionCodec, queue: str) -> EncryptionCodec:
    return codec.with_context(
        ActivitySerializationContext(
            namespace="default",
            activity_id="1",
            activity_type="maas.check_account",
            activity_task_queue=queue,
            workflow_id="wf",
            workflow_type="t",
            is_local=False,
        )
    )


async def test_payloads_for_a_gateway_queue_open_only_with_that_gateways_key() -> None:
    master = new_key_spec("k1")
    control_plane = EncryptionCodec([master])
    [to_a] = await _for_queue(control_plane, "gateway.gw-a").encode([Payload(data=b"for a")])
    [to_cp] = await _for_queue(control_plane, "control-plane").encode([Payload(data=b"cp")])
    gateway_a = EncryptionCodec([gateway_key_spec(master, "gw-a")])
    gateway_b = EncryptionCodec([gateway_key_spec(master, "gw-b")])
    assert (await gateway_a.decode([to_a]))[0].data == b"for a"
    for foreign in (to_cp, to_a):
        with pytest.raises(CodecKeyError, match="unknown codec key"):
            await gateway_b.decode([foreign])
    with pytest.raises(CodecKeyError):
        await gateway_a.decode([to_cp])
    # What a gateway answers (encoded with its own key) the control plane opens by derivation.
    [answer] = await gateway_a.encode([Payload(data=b"result")])
    assert (await control_plane.decode([answer]))[0].data == b"result"
    assert (await control_plane.decode([to_a]))[0].data == b"for a"


def test_a_gateway_key_spec_is_not_the_master_key() -> None:
    master = new_key_spec("k1")
    derived = gateway_key_spec(master, "gw-a")
    assert parse_key(derived)[1] != parse_key(master)[1]
    assert parse_key(derived)[0] == "k1/gw/gw-a"
    assert gateway_key_spec(master, "gw-a") == derived
