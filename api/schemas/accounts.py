"""Cloud accounts: one MAAS, reached through one gateway. The MAAS key is write-only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from domain.cluster import DNS_LABEL
from domain.text import no_control_characters

MAAS_KEY_PATTERN = r"^[A-Za-z0-9]+:[A-Za-z0-9]+:[A-Za-z0-9]+$"


class KeyThroughGateway(BaseModel):
    """A MAAS key and the gateway it is sealed to: given together, at creation and on a move."""

    model_config = ConfigDict(extra="forbid")

    maas_api_key: SecretStr = Field(
        description="consumer_key:token_key:token_secret, from the MAAS user's API keys page; "
        "sealed to the gateway, never stored or returned in plaintext",
        json_schema_extra={"pattern": MAAS_KEY_PATTERN},
        max_length=512,
    )
    gateway_id: str | None = Field(default=None, max_length=64)
    use_system_gateway: bool = False

    @model_validator(mode="after")
    def _one_route(self) -> Self:
        if (self.gateway_id is None) == (not self.use_system_gateway):
            raise ValueError(
                "give either gateway_id (a private cloud gateway) or use_system_gateway: true"
            )
        if not re.fullmatch(MAAS_KEY_PATTERN, self.maas_api_key.get_secret_value()):
            raise ValueError(
                "maas_api_key must look like consumer_key:token_key:token_secret "
                "(copy it from the MAAS user's API keys page)"
            )
        return self


class CloudAccountCreate(KeyThroughGateway):
    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    maas_url: Annotated[str, AfterValidator(no_control_characters)] = Field(
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        max_length=2048,
        description="MAAS base URL, e.g. http://maas:5240/MAAS/",
    )


class CloudAccountMove(KeyThroughGateway):
    """Move an account to a gateway (or give its key again on the same one). The key is
    required: the control plane cannot open the sealed copy to seal it for another gateway."""


class CloudAccountPublic(BaseModel):
    id: str
    project_id: str
    name: str
    maas_url: str
    gateway_id: str
    maas_api_key_fingerprint: str | None = Field(
        default=None, description="digest of the key in use, to tell keys apart; never the key"
    )
    maas_api_key_sealed: bool = Field(
        default=False, description="true: the key is sealed to the gateway, only it opens it"
    )
    maas_version: str | None = None
    zones: list[str] = Field(default_factory=list)
    resource_pools: list[str] = Field(default_factory=list)
    machines: int | None = None
    ready_machines: int | None = None
    validated_at: datetime | None = None
    created_at: datetime


class CloudAccountList(BaseModel):
    items: list[CloudAccountPublic]
