"""What MAAS answers, parsed once at the session boundary into the models our code reads.

`MaasSessions.call` checks every answer against a `Shape` and hands back its typed model, so
the activities and the capacity planner never index raw JSON (CAPMAAS does the same with
`fromSDKTypeToMachine`). Fields we do not read are ignored; fields we read and MAAS may send
as null get their empty value, so the code after this module has no `or {}` left.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictInt, TypeAdapter, ValidationError

from domain.maas import Machine
from domain.naming import OWNER_DATA_POOL, OWNER_DATA_REQUEST

T = TypeVar("T")

# MAAS node statuses (maasserver.enum.NODE_STATUS) our code acts on.
STATUS_READY = 4
STATUS_DEPLOYED = 6
STATUS_DEPLOYING = 9
STATUS_FAILED_DEPLOYMENT = 11
STATUS_RELEASING = 12
STATUS_DISK_ERASING = 14
RELEASING = frozenset({STATUS_RELEASING, STATUS_DISK_ERASING})
# A release asked of a machine in these statuses has nothing left to do.
RELEASED_OR_RELEASING = frozenset({STATUS_READY, *RELEASING})


def _empty_when_null(value: Any) -> Any:
    return {} if value is None else value


def _list_when_null(value: Any) -> Any:
    return [] if value is None else value


def _name_of(value: Any) -> Any:
    """MAAS nests zone and pool as objects; tolerate a bare name (or nothing) too."""
    if isinstance(value, dict):
        return value.get("name", "")
    return "" if value is None else value


def _zero_when_null(value: Any) -> Any:
    return 0 if value is None else value


def _text_when_null(value: Any) -> Any:
    return "" if value is None else value


Text = Annotated[str, BeforeValidator(_text_when_null)]
Count = Annotated[int, BeforeValidator(_zero_when_null)]
Strings = Annotated[list[str], BeforeValidator(_list_when_null)]
Name = Annotated[str, BeforeValidator(_name_of)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Subnet(_Answer):
    cidr: str


class _Link(_Answer):
    subnet: Subnet | None = None


class _Interface(_Answer):
    links: Annotated[list[_Link], BeforeValidator(_list_when_null)] = []


class MaasMachine(_Answer):
    """A MAAS machine: the fields our code reads."""

    system_id: str
    status: StrictInt
    status_name: Text = ""
    status_message: Text = ""
    hostname: Text = ""
    owner_data: Annotated[dict[str, str], BeforeValidator(_empty_when_null)] = {}
    tag_names: Strings = []
    ip_addresses: Strings = []
    cpu_count: Count = 0
    memory: Count = 0
    zone: Name = ""
    pool: Name = ""
    boot_interface: _Interface | None = None

    @property
    def boot_subnets(self) -> list[str]:
        """The CIDRs the machine's boot interface is linked to."""
        links = self.boot_interface.links if self.boot_interface else []
        return [link.subnet.cidr for link in links if link.subnet]

    def machine(self) -> Machine:
        """Our view of it; the pool and request come from our owner_data marks."""
        return Machine(
            system_id=self.system_id,
            hostname=self.hostname,
            pool=self.owner_data.get(OWNER_DATA_POOL, ""),
            request_id=self.owner_data.get(OWNER_DATA_REQUEST, ""),
            status=self.status_name,
            ip_addresses=list(self.ip_addresses),
            cpu_count=self.cpu_count,
            memory_mib=self.memory,
            zone=self.zone,
        )


class Named(_Answer):
    """A tag, zone or resource pool."""

    name: str


class Version(_Answer):
    version: Text = ""


class IpAddress(_Answer):
    ip: str


class Domain(_Answer):
    name: str
    is_default: bool = False


class DnsRecord(_Answer):
    id: int
    fqdn: str
    ip_addresses: Annotated[list[IpAddress], BeforeValidator(_list_when_null)] = []


class Shape(Generic[T]):
    """What a call must answer: JSON that parses as `T`."""

    def __init__(self, description: str, adapter: TypeAdapter[T]) -> None:
        self.description = description
        self.adapter = adapter

    def parse(self, data: Any) -> T:
        """`data` as `T`; ShapeError saying how it differs otherwise."""
        if isinstance(data, bytes | bytearray):
            raise ShapeError(
                f"{body_shape(bytes(data))}, not JSON, where {self.description} was due"
            )
        try:
            return self.adapter.validate_python(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            raise ShapeError(
                f"JSON that is not {self.description} ({where}: {first['msg']})"
            ) from None


class _NoContent(Shape[None]):
    """A delete or release: MAAS answers 204 with no body, and we read nothing of it."""

    def __init__(self) -> None:
        super().__init__("no content", TypeAdapter(None))

    def parse(self, data: Any) -> None:
        return None


class ShapeError(ValueError):
    """An answer that is not what the call must answer; the message says how, never what."""


def body_shape(body: bytes) -> str:
    """What an answer looked like, never what it said: whatever answers at a URL a user gave
    may be an internal service, and its body is not ours to pass on."""
    start = body.lstrip()[:1]
    kind = "an HTML page" if start == b"<" else "JSON" if start in (b"{", b"[") else "a body"
    return f"{kind} of {len(body)} bytes"


ANY_JSON: Shape[Any] = Shape("JSON", TypeAdapter(Any))
NO_CONTENT = _NoContent()
MACHINE = Shape("a machine", TypeAdapter(MaasMachine))
MACHINES = Shape("a list of machines", TypeAdapter(list[MaasMachine]))
NAMED = Shape("a list of named objects", TypeAdapter(list[Named]))
ONE_NAMED = Shape("a named object", TypeAdapter(Named))
VERSION = Shape("a version object", TypeAdapter(Version))
SUBNETS = Shape("a list of subnets", TypeAdapter(list[Subnet]))
IPS = Shape("a list of IP addresses", TypeAdapter(list[IpAddress]))
IP = Shape("an IP address", TypeAdapter(IpAddress))
DOMAINS = Shape("a list of domains", TypeAdapter(list[Domain]))
RECORDS = Shape("a list of DNS resources", TypeAdapter(list[DnsRecord]))
RECORD = Shape("a DNS resource", TypeAdapter(DnsRecord))
