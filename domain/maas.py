"""What the control plane and the gateway exchange about MAAS."""

from __future__ import annotations

from pydantic import BaseModel, Field


def maas_key_purpose(url: str) -> str:
    """What a sealed MAAS key is bound to: its MAAS URL, so a sealed key moved onto another
    URL (an attacker's server) does not open, and the gateway never sends it there."""
    return f"maas-api-key {url}"


class MaasAccount(BaseModel):
    """How a gateway reaches one MAAS.

    Workflows carry the key sealed to the account's gateway (`sealed_api_key`, opened only on
    that gateway). `api_key` is the plaintext: set on the gateway once opened, or, for an
    account stored before sealing whose gateway has no sealing key yet, sent as before
    (inside codec-encrypted payloads).
    """

    url: str = Field(description="MAAS base URL, e.g. http://maas:5240/MAAS/")
    api_key: str = Field(
        default="", repr=False, description="consumer_key:token_key:token_secret, plaintext"
    )
    sealed_api_key: str = Field(
        default="", repr=False, description="the key sealed to the account's gateway"
    )

    def __str__(self) -> str:  # keeps the key out of logs and error messages
        return f"MAAS at {self.url}"


class Machine(BaseModel):
    """A MAAS machine as metalgate tracks it."""

    system_id: str
    hostname: str
    pool: str
    request_id: str = ""
    status: str = ""
    ip_addresses: list[str] = Field(default_factory=list)
    cpu_count: int = 0
    memory_mib: int = 0
    zone: str = ""
    remediation: str = Field(
        default="",
        description="the remediation step under way on this node (domain.remediation); "
        "empty when it is healthy",
    )
