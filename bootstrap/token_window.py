"""Bootstrap tokens derived from a per-cluster seed, one per half-TTL window.

The control plane and every control-plane node compute the same token for a window, so a
node that a scale adds days later can join with the token of its render's window: the
control-plane nodes keep the current and the next window's tokens in the cluster. This file
runs on those nodes as it is (standard library only): `python3 FILE SEED_FILE TTL_SECONDS`
prints a Secret list for `kubectl apply -f -`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from datetime import UTC, datetime

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def window_of(ttl_seconds: int, at_unix: float) -> int:
    """A window is half the TTL, so a window's token always has half its TTL left."""
    return int(at_unix) // (ttl_seconds // 2)


def window_expiry(ttl_seconds: int, window: int) -> int:
    return window * (ttl_seconds // 2) + ttl_seconds


def derive_token(seed_hex: str, window: int) -> str:
    """`<6>.<16>` of [a-z0-9], from HMAC-SHA256(seed, window) read as a base-36 number."""
    digest = hmac.new(bytes.fromhex(seed_hex), f"bootstrap-token {window}".encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 36)
        chars.append(ALPHABET[digit])
    text = "".join(chars)
    return f"{text[:6]}.{text[6:]}"


def token_secret(token: str, expires_unix: int) -> dict[str, object]:
    """The Secret kubeadm's own `kubeadm token create` makes."""
    token_id, token_secret_part = token.split(".")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "description": "metalgate node joins",
            "token-id": token_id,
            "token-secret": token_secret_part,
            "expiration": datetime.fromtimestamp(expires_unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        },
    }


def current_and_next(seed_hex: str, ttl_seconds: int, at_unix: float) -> dict[str, object]:
    window = window_of(ttl_seconds, at_unix)
    items = [
        token_secret(derive_token(seed_hex, w), window_expiry(ttl_seconds, w))
        for w in (window, window + 1)
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


if __name__ == "__main__":
    with open(sys.argv[1]) as seed_file:
        seed = seed_file.read().strip()
    json.dump(current_and_next(seed, int(sys.argv[2]), time.time()), sys.stdout)
