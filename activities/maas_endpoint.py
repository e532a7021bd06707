"""The control-plane endpoint in MAAS, run only by gateway workers (like activities.maas).

One DNS name per cluster carries the ownership mark (`endpoint_record_name`):
- `vip`: an address reserved with `ipaddresses op=reserve` and that name as hostname, so MAAS
  links name and address and never hands the address to a machine. Reserving with a hostname
  and releasing need no MAAS admin rights; MAAS drops the name with its last address.
- `dns`: a DNS resource of that name in the default domain, pointing at the addresses MAAS
  gave the cluster's control-plane machines (claimed when their deployment starts). Writing
  DNS needs a MAAS admin key, as in MAAS.
- `external`: the operator's load balancer; nothing is made in MAAS.

Every activity looks the name up first, so a retry after a lost answer finds what the lost
attempt made. python-libmaas 0.6.8 has no objects for `ipaddresses/` or `dnsresources/`;
like activities.maas we call every handler through its description-driven `bones` layer.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from maas.client.bones import CallError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.maas_answers import (
    DOMAINS,
    IP,
    IPS,
    MACHINES,
    NO_CONTENT,
    RECORD,
    RECORDS,
    STATUS_DEPLOYED,
    STATUS_DEPLOYING,
    SUBNETS,
    DnsRecord,
    MaasMachine,
)
from activities.maas_session import HTTP_BAD_REQUEST, HTTP_NOT_FOUND, MaasSessions, call_error_text
from activities.models import (
    ENSURE_ENDPOINT,
    FIND_OWNED_ENDPOINTS,
    REMOVE_ENDPOINT,
    EnsureEndpointInput,
    EnsureEndpointResult,
    FindOwnedEndpointsInput,
    FindOwnedEndpointsResult,
    OwnedEndpoint,
    RemoveEndpointInput,
    RemoveEndpointResult,
)
from domain.cluster import EndpointMode
from domain.maas import MaasAccount
from domain.naming import (
    DNS_LABEL_PATTERN,
    OWNER_DATA_POOL,
    cluster_of_endpoint_record,
    endpoint_record_name,
    owner_agent_name,
)
from domain.phases import Reason

log = logging.getLogger(__name__)

HTTP_UNAVAILABLE = 503
NEEDS_ADMIN = (
    "MAAS lets only administrators write DNS: mode dns needs an admin key, mode vip does not"
)


def _unavailable(account: MaasAccount, message: str) -> ApplicationError:
    return ApplicationError(
        f"{account}: {message}", type=Reason.ENDPOINT_UNAVAILABLE.value, non_retryable=True
    )


class EndpointActivities:
    """Gateway activities for the endpoint; `sessions` is the gateway's shared MAAS sessions."""

    def __init__(self, sessions: MaasSessions) -> None:
        self.sessions = sessions

    def all(self) -> list[Any]:
        return [self.ensure_endpoint, self.remove_endpoint, self.find_owned_endpoints]

    async def _records(self, account: MaasAccount, name: str) -> list[DnsRecord]:
        return await self.sessions.call(account, "DNSResources", "read", RECORDS, name=name)

    async def _reserved(self, account: MaasAccount) -> set[str]:
        return {a.ip for a in await self.sessions.call(account, "IPAddresses", "read", IPS)}

    # --- ensure --------------------------------------------------------------------------

    @activity.defn(name=ENSURE_ENDPOINT)
    async def ensure_endpoint(self, input: EnsureEndpointInput) -> EnsureEndpointResult:
        """The endpoint's host, made in MAAS if missing; idempotent."""
        mode = input.endpoint.mode
        if mode == EndpointMode.EXTERNAL:
            address = input.endpoint.address or ""
            return EnsureEndpointResult(mode=mode, host=address, addresses=[address])
        name = _record_name(input.cluster_id)
        if mode == EndpointMode.VIP:
            ip = await self._ensure_vip(input, name)
            return EnsureEndpointResult(mode=mode, host=ip, addresses=[ip])
        return await self._ensure_dns(input, name)

    async def _ensure_vip(self, input: EnsureEndpointInput, name: str) -> str:
        account = input.account
        reserved = await self._reserved(account)
        for record in await self._records(account, name):
            ours = [a.ip for a in record.ip_addresses if a.ip in reserved]
            if ours:
                return str(ours[0])
        wanted = input.endpoint.address
        if wanted and wanted in reserved and not await self._named(account, wanted):
            # Reserved with our key but under no name: an attempt whose name was since deleted.
            return wanted
        params: dict[str, Any] = {"hostname": name}
        if wanted:
            params["ip"] = wanted
        else:
            params["subnet"] = await self._machines_subnet(input)
        try:
            made = await self.sessions.call(account, "IPAddresses", "reserve", IP, **params)
        except CallError as error:
            if error.status in (HTTP_BAD_REQUEST, HTTP_NOT_FOUND, HTTP_UNAVAILABLE):
                raise _unavailable(
                    account,
                    f"cannot reserve the control-plane VIP {wanted or 'in ' + params['subnet']}: "
                    f"{call_error_text(error, account)}; choose a free address in "
                    "control_plane_endpoint.address",
                ) from None
            raise
        log.info("cluster %s: reserved VIP %s as %s", input.cluster_id, made.ip, name)
        return made.ip

    async def _named(self, account: MaasAccount, ip: str) -> list[str]:
        """The DNS names pointing at `ip` (another cluster's VIP carries its own)."""
        every = await self.sessions.call(account, "DNSResources", "read", RECORDS)
        return [r.fqdn for r in every if any(a.ip == ip for a in r.ip_addresses)]

    async def _machines_subnet(self, input: EnsureEndpointInput) -> str:
        """The subnet the cluster's machines boot from; the only subnet when MAAS has one."""
        listed = await self.sessions.call(input.account, "Subnets", "read", SUBNETS)
        subnets = [s.cidr for s in listed]
        used: set[str] = set()
        for machine in await self._owned(input.account, input.cluster_id):
            used.update(machine.boot_subnets)
            for ip in machine.ip_addresses:
                used.update(c for c in subnets if _contains(c, ip))
        candidates = sorted(used & set(subnets)) or (subnets if len(subnets) == 1 else [])
        if len(candidates) != 1:
            raise _unavailable(
                input.account,
                f"cannot tell which subnet the VIP belongs to (subnets {sorted(subnets)}, "
                f"the machines use {sorted(used) or 'none yet'}); "
                "name it in control_plane_endpoint.address",
            )
        return candidates[0]

    async def _ensure_dns(self, input: EnsureEndpointInput, name: str) -> EnsureEndpointResult:
        account = input.account
        domains = await self.sessions.call(account, "Domains", "read", DOMAINS)
        default = next((d.name for d in domains if d.is_default), None)
        if default is None:
            raise _unavailable(account, "MAAS lists no default domain for the endpoint's name")
        fqdn = f"{name}.{default}"
        addresses = await self._control_plane_addresses(input)
        try:
            try:
                addresses = await self._point(input, name, fqdn, addresses)
            except CallError as error:
                if error.status != HTTP_BAD_REQUEST:
                    raise
                # A concurrent call (another control-plane node's) made the name between
                # our read and our create: read again and update it instead.
                addresses = await self._point(input, name, fqdn, addresses)
        except CallError as error:
            if error.status != HTTP_BAD_REQUEST:
                raise
            raise _unavailable(
                account, f"cannot write the DNS record {fqdn}: {call_error_text(error, account)}"
            ) from None
        except ApplicationError as error:
            if error.type != Reason.MAAS_AUTH_FAILED:
                raise
            raise _unavailable(account, f"{NEEDS_ADMIN} (writing {fqdn})") from None
        return EnsureEndpointResult(mode=EndpointMode.DNS, host=fqdn, addresses=addresses)

    async def _point(
        self, input: EnsureEndpointInput, name: str, fqdn: str, addresses: list[str]
    ) -> list[str]:
        """Make `fqdn` resolve to `addresses`; with none known, keep what it resolves to."""
        account = input.account
        existing = next((r for r in await self._records(account, name) if r.fqdn == fqdn), None)
        if existing is None:
            if addresses:
                await self.sessions.call(
                    account,
                    "DNSResources",
                    "create",
                    RECORD,
                    fqdn=fqdn,
                    ip_addresses=" ".join(addresses),
                )
                log.info("cluster %s: %s -> %s", input.cluster_id, fqdn, addresses)
            return addresses
        current = sorted(a.ip for a in existing.ip_addresses)
        if not addresses:
            return current
        if current != addresses:
            await self.sessions.call(
                account,
                "DNSResource",
                "update",
                RECORD,
                id=existing.id,
                ip_addresses=" ".join(addresses),
            )
            log.info("cluster %s: %s now -> %s", input.cluster_id, fqdn, addresses)
        return addresses

    async def _owned(self, account: MaasAccount, cluster_id: str) -> list[MaasMachine]:
        agent = owner_agent_name(cluster_id)
        return await self.sessions.call(account, "Machines", "read", MACHINES, agent_name=[agent])

    async def _control_plane_addresses(self, input: EnsureEndpointInput) -> list[str]:
        addresses: set[str] = set()
        for machine in await self._owned(input.account, input.cluster_id):
            if machine.owner_data.get(OWNER_DATA_POOL) != input.control_plane_pool:
                continue
            if machine.system_id in input.leaving:
                continue
            if machine.status in (STATUS_DEPLOYING, STATUS_DEPLOYED):
                addresses.update(machine.ip_addresses)
        return sorted(addresses)

    # --- remove --------------------------------------------------------------------------

    @activity.defn(name=REMOVE_ENDPOINT)
    async def remove_endpoint(self, input: RemoveEndpointInput) -> RemoveEndpointResult:
        """Release the cluster's VIP and delete its DNS name; what is gone counts as done."""
        account = input.account
        name = _record_name(input.cluster_id)
        result = RemoveEndpointResult()
        reserved = await self._reserved(account)
        records = await self._records(account, name)
        for record in records:
            for ip in (a.ip for a in record.ip_addresses if a.ip in reserved):
                try:
                    await self.sessions.call(account, "IPAddresses", "release", NO_CONTENT, ip=ip)
                except CallError as error:
                    if error.status not in (HTTP_BAD_REQUEST, HTTP_NOT_FOUND):  # already free
                        raise
                result.released_ips.append(ip)
        # MAAS drops a reserved name with its last address; a dns-mode record stays until
        # deleted, which needs the admin key that made it.
        left = await self._records(account, name) if records else []
        for record in left:
            try:
                await self.sessions.call(account, "DNSResource", "delete", NO_CONTENT, id=record.id)
            except CallError as error:
                if error.status != HTTP_NOT_FOUND:
                    raise
            except ApplicationError as error:
                if error.type != Reason.MAAS_AUTH_FAILED:
                    raise
                if record.ip_addresses:
                    raise _unavailable(account, f"{NEEDS_ADMIN} (deleting {record.fqdn})") from None
                # A VIP's name without its address resolves to nothing; only an admin may
                # delete it, and it is harmless until then.
                log.warning(
                    "cluster %s: %s kept (needs a MAAS admin)", input.cluster_id, record.fqdn
                )
                continue
            result.deleted_records.append(record.fqdn)
        if result.released_ips or result.deleted_records:
            log.info("cluster %s: removed endpoint %s", input.cluster_id, result)
        return result

    # --- find owned ----------------------------------------------------------------------

    @activity.defn(name=FIND_OWNED_ENDPOINTS)
    async def find_owned_endpoints(
        self, input: FindOwnedEndpointsInput
    ) -> FindOwnedEndpointsResult:
        """Every DNS name carrying an endpoint mark, with the cluster it names."""
        reserved = await self._reserved(input.account)
        found = []
        for record in await self.sessions.call(input.account, "DNSResources", "read", RECORDS):
            cluster_id = cluster_of_endpoint_record(record.fqdn.split(".", 1)[0])
            if cluster_id is None:
                continue
            addresses = sorted(a.ip for a in record.ip_addresses)
            found.append(
                OwnedEndpoint(
                    cluster_id=cluster_id,
                    fqdn=record.fqdn,
                    addresses=addresses,
                    reserved_ips=[ip for ip in addresses if ip in reserved],
                )
            )
        return FindOwnedEndpointsResult(endpoints=found)


def _record_name(cluster_id: str) -> str:
    name = endpoint_record_name(cluster_id)
    if not DNS_LABEL_PATTERN.fullmatch(name):
        raise ApplicationError(
            f"cluster id {cluster_id!r} does not make a DNS name ({name!r})",
            type=Reason.ENDPOINT_UNAVAILABLE.value,
            non_retryable=True,
        )
    return name


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return False
