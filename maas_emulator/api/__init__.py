"""The MAAS 2.0 REST API, one module per group of handlers."""

from maas_emulator.api import dns, images, machines, misc, network, tags, zones
from maas_emulator.api.routing import Resource

RESOURCES: list[Resource] = [
    machines.machines,
    machines.machine,
    tags.tags,
    tags.tag,
    zones.zones,
    zones.zone,
    zones.pools,
    zones.pool,
    misc.version,
    misc.users,
    misc.user,
    misc.events,
    network.subnets,
    network.subnet,
    network.ipaddresses,
    dns.domains,
    dns.domain,
    dns.dnsresources,
    dns.dnsresource,
    images.boot_resources,
    images.boot_resource,
]
