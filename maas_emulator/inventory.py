"""The machines an emulator starts with: generated, or read from a YAML/JSON inventory file.

An inventory file looks like:

    zones: [default, zone-a]
    pools: [default, gpu]
    tags: [gpu]
    machines:
      - {hostname: node01, cpu_count: 8, memory: 16384, zone: zone-a, pool: gpu, tags: [gpu]}
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from maas_emulator.models import BootResource, Domain, Machine, ResourcePool, Subnet, Tag, Zone
from maas_emulator.state import State

DEFAULT = "default"
FIRST_ADDRESS = ipaddress.IPv4Address("10.20.0.10")
# The machines' subnet: they take addresses upwards from FIRST_ADDRESS, reservations without
# an explicit IP come from the top down, so the two never meet on any realistic inventory.
MACHINE_SUBNET = ipaddress.IPv4Network("10.20.0.0/16")
DEFAULT_DOMAIN = "maas"
# Images a fresh emulator offers: two synced Ubuntu releases and one uploaded custom image
# (as built with packer-maas, Kubernetes baked in).
SEEDED_IMAGES = [
    ("Synced", "ubuntu/jammy"),
    ("Synced", "ubuntu/noble"),
    ("Uploaded", "custom/metalgate-k8s"),
]
_SYSTEM_ID_ALPHABET = "abcdefghkmnpqrstwxy0123456789"


class MachineSpec(BaseModel):
    hostname: str
    system_id: str | None = None
    architecture: str = "amd64/generic"
    cpu_count: int = 4
    memory: int = Field(8192, description="MiB")
    storage: float = Field(500_000.0, description="MB")
    zone: str = DEFAULT
    pool: str = DEFAULT
    tags: list[str] = Field(default_factory=list)
    address: str | None = None


class Inventory(BaseModel):
    zones: list[str] = Field(default_factory=list)
    pools: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    machines: list[MachineSpec] = Field(default_factory=list)


def load_inventory(path: Path) -> Inventory:
    # YAML is a superset of JSON, so one loader reads both.
    return Inventory.model_validate(yaml.safe_load(path.read_text()))


def generate_inventory(count: int, rng: random.Random) -> Inventory:
    """Machines that vary in CPU count, memory, zone and resource pool."""
    zones = [DEFAULT, "zone-a", "zone-b"]
    pools = [DEFAULT, "spare"]
    machines = [
        MachineSpec(
            hostname=f"node{i:04d}",
            cpu_count=rng.choice([2, 4, 8, 16, 32]),
            memory=rng.choice([4096, 8192, 16384, 32768, 65536]),
            storage=float(rng.choice([250_000, 500_000, 1_000_000])),
            zone=rng.choice(zones),
            pool=rng.choices(pools, weights=[3, 1])[0],
        )
        for i in range(1, count + 1)
    ]
    return Inventory(zones=zones, pools=pools, machines=machines)


def seed(state: State, inventory: Inventory, rng: random.Random) -> None:
    """Create the inventory's objects in an empty state; default zone and pool always exist."""
    names = {m.zone for m in inventory.machines} | set(inventory.zones) | {DEFAULT}
    for name in sorted(names, key=lambda n: (n != DEFAULT, n)):
        if name not in state.zones:
            state.save_zone(Zone(id=state.next_id(state.zones), name=name))
    names = {m.pool for m in inventory.machines} | set(inventory.pools) | {DEFAULT}
    for name in sorted(names, key=lambda n: (n != DEFAULT, n)):
        if name not in state.pools:
            state.save_pool(ResourcePool(id=state.next_id(state.pools), name=name))
    for name in sorted({t for m in inventory.machines for t in m.tags} | set(inventory.tags)):
        if name not in state.tags:
            state.save_tag(Tag(name=name))
    taken = set(state.machines)
    first = FIRST_ADDRESS + len(state.machines)
    for index, spec in enumerate(inventory.machines):
        system_id = spec.system_id or _new_system_id(rng, taken)
        taken.add(system_id)
        address = spec.address or str(first + index)
        fields = spec.model_dump(exclude={"system_id", "address"})
        state.save_machine(Machine(system_id=system_id, address=address, **fields))


def _new_system_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = "".join(rng.choice(_SYSTEM_ID_ALPHABET) for _ in range(6))
        if candidate not in taken:
            return candidate


def seed_network(state: State) -> None:
    """The machines' subnet, the default domain and the boot images, when not there yet.

    Runs at every start, so a data dir written before these objects existed gets them too.
    """
    if not state.subnets:
        state.save_subnet(
            Subnet(
                id=1,
                name=str(MACHINE_SUBNET),
                cidr=str(MACHINE_SUBNET),
                gateway_ip=str(MACHINE_SUBNET.network_address + 1),
                dns_servers=[],
            )
        )
    if not state.domains:
        # Id 0 like MAAS's own default domain, which machines already show as theirs.
        state.save_domain(Domain(id=0, name=DEFAULT_DOMAIN, is_default=True))
    if not state.boot_resources:
        for number, (kind, name) in enumerate(SEEDED_IMAGES, start=1):
            subarches = "generic,hwe-22.04,ga-22.04" if kind == "Synced" else None
            state.save_boot_resource(
                BootResource(id=number, type=kind, name=name, subarches=subarches)
            )
