from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bootstrap.tokens import TOKEN_PATTERN, BootstrapToken, new_bootstrap_token, new_certificate_key


def test_token_format_and_expiry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tokens = [new_bootstrap_token(timedelta(hours=24), now) for _ in range(50)]
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t.value) for t in tokens)
    assert len({t.value for t in tokens}) == 50
    token = tokens[0]
    assert token.expires_at == now + timedelta(hours=24)
    assert token.token_id == token.value[:6]
    assert not token.expires_within(timedelta(hours=1), now)
    assert token.expires_within(timedelta(hours=1), now + timedelta(hours=23, minutes=30))
    assert token.value not in repr(token)


@pytest.mark.parametrize("bad", ["ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abc.def"])
def test_token_pattern_refuses(bad: str) -> None:
    assert not re.match(TOKEN_PATTERN, bad)
    with pytest.raises(ValidationError):
        BootstrapToken(value=bad, expires_at=datetime.now(UTC))


def test_certificate_key_is_32_random_bytes_hex() -> None:
    key = new_certificate_key()
    assert re.fullmatch(r"[0-9a-f]{64}", key) and len(bytes.fromhex(key)) == 32
    assert key != new_certificate_key()
