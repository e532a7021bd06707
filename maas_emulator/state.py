"""The inventory in memory, written through to the store on every change."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from maas_emulator.models import (
    BootResource,
    DnsResource,
    Domain,
    Event,
    EventLevel,
    Machine,
    ResourcePool,
    StaticIP,
    Subnet,
    Tag,
    User,
    Zone,
)
from maas_emulator.store import Store, Table


class State:
    """All MAAS objects by key. Mutations go through the `save_*` methods so they persist."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.machines: dict[str, Machine] = {
            m.system_id: m for m in store.load(Table.MACHINES, Machine)
        }
        self.users: dict[str, User] = {u.username: u for u in store.load(Table.USERS, User)}
        self.tags: dict[str, Tag] = {t.name: t for t in store.load(Table.TAGS, Tag)}
        self.zones: dict[str, Zone] = {z.name: z for z in store.load(Table.ZONES, Zone)}
        self.pools: dict[str, ResourcePool] = {
            p.name: p for p in store.load(Table.POOLS, ResourcePool)
        }
        self._users_by_token = {u.token_key: u for u in self.users.values()}
        self.subnets: dict[int, Subnet] = {s.id: s for s in store.load(Table.SUBNETS, Subnet)}
        self.ip_addresses: dict[str, StaticIP] = {
            a.ip: a for a in store.load(Table.IP_ADDRESSES, StaticIP)
        }
        self.domains: dict[int, Domain] = {d.id: d for d in store.load(Table.DOMAINS, Domain)}
        self.dns_resources: dict[int, DnsResource] = {
            r.id: r for r in store.load(Table.DNS_RESOURCES, DnsResource)
        }
        self.boot_resources: dict[int, BootResource] = {
            b.id: b for b in store.load(Table.BOOT_RESOURCES, BootResource)
        }

    def user_for_token(self, token_key: str) -> User | None:
        return self._users_by_token.get(token_key)

    def machine_by_hostname(self, hostname: str) -> Machine | None:
        return next((m for m in self.machines.values() if m.hostname == hostname), None)

    def save_machine(self, machine: Machine, *events: Event) -> None:
        self.machines[machine.system_id] = machine
        self.store.put(Table.MACHINES, machine.system_id, machine)
        for event in events:
            event.id = self.store.add_event(event)
        self.store.commit()

    def save_user(self, user: User) -> None:
        old = self.users.get(user.username)
        if old is not None:
            self._users_by_token.pop(old.token_key, None)
        self.users[user.username] = user
        self._users_by_token[user.token_key] = user
        self.store.put(Table.USERS, user.username, user)
        self.store.commit()

    def save_tag(self, tag: Tag) -> None:
        self.tags[tag.name] = tag
        self.store.put(Table.TAGS, tag.name, tag)
        self.store.commit()

    def delete_tag(self, name: str) -> None:
        del self.tags[name]
        self.store.delete(Table.TAGS, name)
        for machine in self.machines.values():
            if name in machine.tags:
                machine.tags.remove(name)
                self.store.put(Table.MACHINES, machine.system_id, machine)
        self.store.commit()

    def save_zone(self, zone: Zone) -> None:
        self.zones[zone.name] = zone
        self.store.put(Table.ZONES, zone.name, zone)
        self.store.commit()

    def delete_zone(self, name: str) -> None:
        del self.zones[name]
        self.store.delete(Table.ZONES, name)
        self.store.commit()

    def save_pool(self, pool: ResourcePool) -> None:
        self.pools[pool.name] = pool
        self.store.put(Table.POOLS, pool.name, pool)
        self.store.commit()

    def delete_pool(self, name: str) -> None:
        del self.pools[name]
        self.store.delete(Table.POOLS, name)
        self.store.commit()

    def next_id(self, kind: dict[str, Zone] | dict[str, ResourcePool]) -> int:
        return max((item.id for item in kind.values()), default=-1) + 1

    # --- networking and images: keyed by id (IP addresses by address) -------------------

    def save_subnet(self, subnet: Subnet) -> None:
        self._put(Table.SUBNETS, self.subnets, subnet.id, subnet)

    def save_ip(self, address: StaticIP) -> None:
        self._put(Table.IP_ADDRESSES, self.ip_addresses, address.ip, address)

    def delete_ip(self, ip: str) -> None:
        """Forget a reservation; DNS resources left without any address go with it, as in MAAS."""
        del self.ip_addresses[ip]
        self.store.delete(Table.IP_ADDRESSES, ip)
        for record in list(self.dns_resources.values()):
            if ip in record.ip_addresses:
                record.ip_addresses.remove(ip)
                if record.ip_addresses:
                    self.store.put(Table.DNS_RESOURCES, str(record.id), record)
                else:
                    del self.dns_resources[record.id]
                    self.store.delete(Table.DNS_RESOURCES, str(record.id))
        self.store.commit()

    def save_domain(self, domain: Domain) -> None:
        self._put(Table.DOMAINS, self.domains, domain.id, domain)

    def delete_domain(self, domain_id: int) -> None:
        del self.domains[domain_id]
        self.store.delete(Table.DOMAINS, str(domain_id))
        self.store.commit()

    def save_dns_resource(self, record: DnsResource) -> None:
        self._put(Table.DNS_RESOURCES, self.dns_resources, record.id, record)

    def delete_dns_resource(self, record_id: int) -> None:
        del self.dns_resources[record_id]
        self.store.delete(Table.DNS_RESOURCES, str(record_id))
        self.store.commit()

    def save_boot_resource(self, resource: BootResource) -> None:
        self._put(Table.BOOT_RESOURCES, self.boot_resources, resource.id, resource)

    def default_domain(self) -> Domain:
        return next(d for d in self.domains.values() if d.is_default)

    def _put(self, table: Table, items: dict[Any, Any], key: int | str, doc: BaseModel) -> None:
        items[key] = doc
        self.store.put(table, str(key), doc)
        self.store.commit()


def next_number(items: dict[int, Any]) -> int:
    """The id MAAS would give the next object of a kind: one more than the highest."""
    return max(items, default=0) + 1


def new_event(
    machine: Machine,
    username: str,
    type_: str,
    description: str,
    level: EventLevel = EventLevel.INFO,
) -> Event:
    return Event(
        system_id=machine.system_id,
        hostname=machine.hostname,
        username=username,
        level=level,
        type=type_,
        description=description,
        created=time.time(),
    )
