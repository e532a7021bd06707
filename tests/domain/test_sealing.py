"""Sealed boxes: only the recipient's private key opens them, for the purpose they were sealed."""

from __future__ import annotations

import pytest

from domain.sealing import SEALED_PREFIX, SealingError, SealingKeyPair, key_fingerprint, seal

KEY = "ck:tk:secret-part"


def test_only_the_recipient_opens_a_sealed_value() -> None:
    a, b = SealingKeyPair.generate(), SealingKeyPair.generate()
    sealed = seal(a.public_key, KEY, "maas-api-key http://maas/")
    assert sealed.startswith(SEALED_PREFIX)
    assert KEY not in sealed and "secret-part" not in sealed
    assert a.open(sealed, "maas-api-key http://maas/") == KEY
    with pytest.raises(SealingError, match="another gateway"):
        b.open(sealed, "maas-api-key http://maas/")


def test_a_sealed_value_opens_only_for_its_purpose() -> None:
    a = SealingKeyPair.generate()
    sealed = seal(a.public_key, KEY, "maas-api-key http://maas/")
    with pytest.raises(SealingError):
        a.open(sealed, "maas-api-key http://attacker/")


def test_each_seal_differs_and_tampering_is_refused() -> None:
    a = SealingKeyPair.generate()
    one, two = seal(a.public_key, KEY, "p"), seal(a.public_key, KEY, "p")
    assert one != two
    blob = bytearray(one.removeprefix(SEALED_PREFIX).encode())
    blob[-3] = ord("A") if blob[-3] != ord("A") else ord("B")
    with pytest.raises(SealingError):
        a.open(SEALED_PREFIX + blob.decode(), "p")
    with pytest.raises(SealingError, match="prefix"):
        a.open(KEY, "p")


def test_the_private_key_round_trips_and_keys_are_checked() -> None:
    a = SealingKeyPair.generate()
    again = SealingKeyPair.from_private_key(a.private_key)
    assert again.public_key == a.public_key
    assert again.open(seal(a.public_key, KEY, "p"), "p") == KEY
    with pytest.raises(SealingError, match="32 bytes"):
        seal("AAAA", KEY, "p")
    assert key_fingerprint(a.public_key).startswith("sha256:")
    assert a.public_key not in key_fingerprint(a.public_key)
