"""What `metalgate up` writes for other commands to find it: light, so the CLI can read it
without importing the stack (and with it the Temporal SDK)."""

from __future__ import annotations

from pydantic import BaseModel

STACK_FILE = "stack.json"


class StackInfo(BaseModel):
    """Written to <data dir>/stack.json so other commands (demo, CLI) find the stack."""

    api_url: str
    temporal_address: str
    temporal_ui_url: str
    maas_url: str
    maas_api_key_file: str
    admin_api_key_file: str
    pcg_gateway_id: str | None = None
    # Each process's Prometheus endpoint, by child name.
    metrics: dict[str, str] = {}
