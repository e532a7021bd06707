"""Find the AgentBootstrap in the cloud-init user data the control plane rendered.

The user data is a `#cloud-config` whose `write_files` puts the bootstrap JSON at
BOOTSTRAP_PATH; we read it the way cloud-init would write it.
"""

from __future__ import annotations

import base64
import gzip

import yaml
from pydantic import ValidationError

from domain.agent_wire import AgentBootstrap

BOOTSTRAP_PATH = "/etc/metalgate/bootstrap.json"


class NoBootstrap(ValueError):
    """The user data does not start a metalgate agent (another workload, or malformed)."""


def bootstrap_from_user_data(user_data: bytes | str) -> AgentBootstrap:
    text = user_data.decode() if isinstance(user_data, bytes) else user_data
    if not text.lstrip().startswith("#cloud-config"):
        raise NoBootstrap("user data is not a #cloud-config document")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise NoBootstrap(f"user data is not valid YAML: {error}") from error
    files = document.get("write_files", []) if isinstance(document, dict) else []
    for entry in files:
        if isinstance(entry, dict) and entry.get("path") == BOOTSTRAP_PATH:
            content = _decode(str(entry.get("content", "")), str(entry.get("encoding", "")))
            try:
                return AgentBootstrap.model_validate_json(content)
            except ValidationError as error:
                raise NoBootstrap(f"{BOOTSTRAP_PATH} is not an AgentBootstrap: {error}") from error
    raise NoBootstrap(f"no write_files entry for {BOOTSTRAP_PATH}")


def _decode(content: str, encoding: str) -> bytes:
    """cloud-init's write_files encodings: text, b64/base64, gz/gzip, gz+b64/gzip+base64."""
    encoding = encoding.lower()
    data = content.encode()
    if encoding in ("b64", "base64", "gz+b64", "gz+base64", "gzip+b64", "gzip+base64"):
        data = base64.b64decode(data)
    if encoding.startswith(("gz", "gzip")):
        data = gzip.decompress(data)
    return data
