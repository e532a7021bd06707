"""The emulator's state: MAAS objects as pydantic models, the unit of persistence."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field


class NodeStatus(enum.IntEnum):
    """MAAS node status codes; python-libmaas rejects any other value."""

    NEW = 0
    COMMISSIONING = 1
    FAILED_COMMISSIONING = 2
    MISSING = 3
    READY = 4
    RESERVED = 5
    DEPLOYED = 6
    RETIRED = 7
    BROKEN = 8
    DEPLOYING = 9
    ALLOCATED = 10
    FAILED_DEPLOYMENT = 11
    RELEASING = 12
    FAILED_RELEASING = 13
    DISK_ERASING = 14
    FAILED_DISK_ERASING = 15
    RESCUE_MODE = 16
    ENTERING_RESCUE_MODE = 17
    FAILED_ENTERING_RESCUE_MODE = 18
    EXITING_RESCUE_MODE = 19
    FAILED_EXITING_RESCUE_MODE = 20
    TESTING = 21
    FAILED_TESTING = 22

    @property
    def label(self) -> str:
        """The display name MAAS uses in `status_name` and in events."""
        return _LABELS.get(self, self.name.replace("_", " ").capitalize())

    @classmethod
    def parse(cls, text: str) -> NodeStatus:
        """Accept a code ("6"), a keyword ("failed_deployment") or a label ("Failed deployment")."""
        if text.isdigit():
            return cls(int(text))
        return cls[text.strip().upper().replace(" ", "_").replace("-", "_")]


_LABELS = {
    NodeStatus.FAILED_RELEASING: "Releasing failed",
    NodeStatus.ENTERING_RESCUE_MODE: "Entering rescue mode",
    NodeStatus.FAILED_ENTERING_RESCUE_MODE: "Failed to enter rescue mode",
    NodeStatus.EXITING_RESCUE_MODE: "Exiting rescue mode",
    NodeStatus.FAILED_EXITING_RESCUE_MODE: "Failed to exit rescue mode",
}


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"
    ERROR = "error"


class EventLevel(enum.IntEnum):
    """MAAS event levels; they match the `logging` module's numbers."""

    AUDIT = 0
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


class Machine(BaseModel):
    system_id: str
    hostname: str
    domain: str = "maas"
    architecture: str = "amd64/generic"
    cpu_count: int
    memory: int = Field(description="MiB")
    storage: float = Field(description="MB")
    zone: str = "default"
    pool: str = "default"
    tags: list[str] = Field(default_factory=list)
    address: str = Field(description="the IP address the machine gets when deployed")
    status: NodeStatus = NodeStatus.READY
    status_before_broken: NodeStatus | None = None
    owner: str | None = None
    agent_name: str = ""
    owner_data: dict[str, str] = Field(default_factory=dict)
    osystem: str = ""
    distro_series: str = ""
    hwe_kernel: str | None = None
    user_data_b64: str | None = None
    ephemeral_deploy: bool = False
    ip_addresses: list[str] = Field(default_factory=list)
    power_state: PowerState = PowerState.OFF
    status_message: str | None = None
    transition_at: float | None = Field(
        None, description="epoch seconds when the current transient status ends"
    )


class User(BaseModel):
    username: str
    email: str
    is_admin: bool = False
    consumer_key: str
    token_key: str
    token_secret: str

    @property
    def api_key(self) -> str:
        return f"{self.consumer_key}:{self.token_key}:{self.token_secret}"


class Tag(BaseModel):
    name: str
    comment: str = ""
    definition: str = ""
    kernel_opts: str | None = None


class Zone(BaseModel):
    id: int
    name: str
    description: str = ""


class ResourcePool(BaseModel):
    id: int
    name: str
    description: str = ""


class Event(BaseModel):
    id: int = 0
    system_id: str
    hostname: str
    username: str
    level: EventLevel = EventLevel.INFO
    type: str
    description: str
    created: float


class Subnet(BaseModel):
    id: int
    name: str
    cidr: str
    gateway_ip: str | None = None
    dns_servers: list[str] = Field(default_factory=list)
    vlan_id: int = 5001
    vid: int = 0
    space: str = "undefined"
    managed: bool = True


class IPAllocType(enum.IntEnum):
    """MAAS's `alloc_type` of a static IP address."""

    AUTO = 0
    STICKY = 1
    USER_RESERVED = 4
    DHCP = 5
    DISCOVERED = 6


class StaticIP(BaseModel):
    """An IP address MAAS hands out or keeps; here only user reservations are stored."""

    ip: str
    subnet_id: int
    owner: str
    alloc_type: IPAllocType = IPAllocType.USER_RESERVED
    mac: str | None = None
    created: float


class Domain(BaseModel):
    id: int
    name: str
    authoritative: bool = True
    ttl: int | None = None
    is_default: bool = False


class DnsResource(BaseModel):
    """A name in a domain with the IP addresses it resolves to (A/AAAA records)."""

    id: int
    name: str
    domain_id: int
    address_ttl: int | None = None
    ip_addresses: list[str] = Field(default_factory=list)


class BootResource(BaseModel):
    """An image machines can deploy: synced (`ubuntu/<series>`) or uploaded (`custom/<name>`)."""

    id: int
    type: str = Field(description="Synced or Uploaded")
    name: str
    architecture: str = "amd64/generic"
    subarches: str | None = None
