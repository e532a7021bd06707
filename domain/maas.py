"""What the control plane and the gateway exchange about MAAS."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MaasAccount(BaseModel):
    """How a gateway reaches one MAAS. The key travels only inside encrypted payloads."""

    url: str = Field(description="MAAS base URL, e.g. http://maas:5240/MAAS/")
    api_key: str = Field(repr=False, description="consumer_key:token_key:token_secret")

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
