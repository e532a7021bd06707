"""The system gateway's sealing key pair, kept in the control plane's data dir.

The system gateway (run by a self-hosted control plane) makes its key pair at its first start,
as a PCG does at registration: the private key goes into a 0600 state file only its worker
reads, the public key into a file next to it that the API seals cloud accounts to.
"""

from __future__ import annotations

import os
from pathlib import Path

from domain.sealing import SealingKeyPair
from runtime.settings import Settings

STATE_DIR = "system-gateway"
PRIVATE_FILE = "sealing-key"
PUBLIC_FILE = "sealing-key.pub"


def _dir(settings: Settings) -> Path:
    return settings.resolved_data_dir() / STATE_DIR


def _write(path: Path, text: str, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(partial, mode)
    os.replace(partial, path)


def load_or_create(settings: Settings) -> SealingKeyPair:
    """The system gateway's key pair (made on first use); publishes its public half."""
    folder = _dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = folder / PRIVATE_FILE
    keys = SealingKeyPair.generate()
    try:
        # O_EXCL: of two replicas starting at once, one makes the pair and both use it.
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        keys = SealingKeyPair.from_private_key(private.read_text().strip())
    else:
        with os.fdopen(fd, "w") as out:
            out.write(keys.private_key)
    public = folder / PUBLIC_FILE
    if not public.exists() or public.read_text().strip() != keys.public_key:
        _write(public, keys.public_key, 0o644)
    return keys


def public_key(settings: Settings) -> str | None:
    """The system gateway's public sealing key; None until it has started once."""
    path = _dir(settings) / PUBLIC_FILE
    return path.read_text().strip() if path.exists() else None
