from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bootstrap import token_window
from bootstrap.tokens import (
    TOKEN_PATTERN,
    BootstrapToken,
    new_certificate_key,
    new_token_seed,
    window_token,
)

TTL = timedelta(hours=24)


def test_window_tokens_have_the_format_and_half_their_ttl_left() -> None:
    seed = new_token_seed()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(0, 72)]
    tokens = [window_token(seed, TTL, at) for at in hours]
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t.value) for t in tokens)
    for at, token in zip(hours, tokens, strict=True):
        assert TTL / 2 < token.expires_at - at <= TTL
    # One token per 12 h window, the same for every render inside it.
    assert len({t.value for t in tokens}) == 6
    assert window_token(seed, TTL, hours[3]) == tokens[3]
    assert window_token(new_token_seed(), TTL, hours[3]).value != tokens[3].value
    token = tokens[0]
    assert token.token_id == token.value[:6]
    assert not token.expires_within(timedelta(hours=1), start)
    assert token.expires_within(timedelta(hours=1), token.expires_at - timedelta(minutes=30))
    assert token.value not in repr(token)


def test_control_plane_nodes_compute_the_tokens_renders_hand_out(tmp_path: Path) -> None:
    """token_window.py runs on the nodes as a script; its Secrets carry the render's token."""
    seed = new_token_seed()
    (tmp_path / "seed").write_text(seed + "\n")
    printed = subprocess.run(
        [
            sys.executable,
            token_window.__file__,
            str(tmp_path / "seed"),
            str(int(TTL.total_seconds())),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    now = datetime.now(UTC)
    listed = json.loads(printed.stdout)
    assert listed["kind"] == "List" and len(listed["items"]) == 2
    current, upcoming = (item["stringData"] for item in listed["items"])
    rendered = window_token(seed, TTL, now)
    assert f"{current['token-id']}.{current['token-secret']}" == rendered.value
    assert current["expiration"] == rendered.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = window_token(seed, TTL, now + TTL / 2)
    assert f"{upcoming['token-id']}.{upcoming['token-secret']}" == later.value
    secret = listed["items"][0]
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["metadata"] == {
        "name": f"bootstrap-token-{current['token-id']}",
        "namespace": "kube-system",
    }
    assert current["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"


@pytest.mark.parametrize("bad", ["ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abc.def"])
def test_token_pattern_refuses(bad: str) -> None:
    assert not re.match(TOKEN_PATTERN, bad)
    with pytest.raises(ValidationError):
        BootstrapToken(value=bad, expires_at=datetime.now(UTC))


def test_certificate_key_is_32_random_bytes_hex() -> None:
    key = new_certificate_key()
    assert re.fullmatch(r"[0-9a-f]{64}", key) and len(bytes.fromhex(key)) == 32
    assert key != new_certificate_key()
