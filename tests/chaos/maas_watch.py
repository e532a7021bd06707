"""The chaos checker's eye on MAAS: who owns each machine, over time, as MAAS itself says.

Two sources, read in every poll: the machines (owner_data names the cluster metalgate marked
it for) and MAAS's event log, whose allocation events carry the comment naming the cluster
MAAS gave the machine to ("metalgate cluster <id> ..."), and whose Ready events end that.
A machine whose owner_data names a cluster other than the one MAAS had allocated it to is
owned by two clusters: it changed hands without passing through Ready.

Each poll reads the log, then the machines, then the log again, so the snapshot falls between
two known points: a mark is right if its cluster held the machine at the first point or was
given it between the two. No timing assumption is needed, however slow the calls are.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.naming import OWNER_DATA_CLUSTER

READY = "Ready"
TO_READY = "to 'Ready'"
TO_ALLOCATED = re.compile(r"to 'Allocated': metalgate cluster (\S+)")
TO_FAILED_DEPLOYMENT = "to 'Failed deployment'"
EVENT_PAGE = 1000


def oauth_header(api_key: str) -> str:
    """MAAS OAuth 1.0 PLAINTEXT, signed with the API key (consumer:token:secret)."""
    consumer, token, secret = api_key.split(":")
    return (
        f'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
        f'oauth_consumer_key="{consumer}", oauth_token="{token}", '
        f'oauth_signature="&{secret}", oauth_nonce="{secrets.token_hex(8)}", '
        f'oauth_timestamp="{int(time.time())}"'
    )


@dataclass
class Violation:
    system_id: str
    allocated_to: str
    marked_for: str
    at: float

    def __str__(self) -> str:
        return (
            f"{self.system_id}: MAAS allocated it to {self.allocated_to} but owner_data names "
            f"{self.marked_for}"
        )


@dataclass
class MaasWatch:
    """Poll with `run()` until cancelled; read the findings afterwards."""

    maas_url: str
    api_key: str
    interval: float = 0.5
    allocated_to: dict[str, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    owners_seen: dict[str, set[str]] = field(default_factory=dict)
    transitions: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    unavailable: int = 0
    _event_cursor: int = 0
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.maas_url, timeout=30.0) as http:
            while True:
                # The emulator may answer an injected 503: the next poll catches up, and the
                # event log replays every transition the gap could have hidden.
                with contextlib.suppress(httpx.HTTPError):
                    await self.poll(http)
                await asyncio.sleep(self.interval)

    async def poll(self, http: httpx.AsyncClient) -> None:
        await self._read_events(http)
        before = dict(self.allocated_to)
        machines = await self._get(http, "machines/")
        given = await self._read_events(http)
        self.observe(machines, before, given)
        self.polls += 1

    async def machines(self) -> list[dict[str, Any]]:
        """One fresh read of every machine, retried through injected 503s."""
        async with httpx.AsyncClient(base_url=self.maas_url, timeout=30.0) as http:
            for _ in range(60):
                with contextlib.suppress(httpx.HTTPError):
                    return list(await self._get(http, "machines/"))
                await asyncio.sleep(0.5)
        raise AssertionError(f"MAAS at {self.maas_url} did not answer for 30 s")

    async def _get(self, http: httpx.AsyncClient, path: str, **params: Any) -> Any:
        response = await http.get(
            f"api/2.0/{path}", params=params, headers={"Authorization": oauth_header(self.api_key)}
        )
        if response.status_code == 503:
            self.unavailable += 1
        response.raise_for_status()
        return response.json()

    async def _read_events(self, http: httpx.AsyncClient) -> set[tuple[str, str]]:
        """Apply the new events; the (system id, cluster) allocations among them."""
        given: set[tuple[str, str]] = set()
        while True:
            page = await self._get(
                http,
                "events/",
                op="query",
                after=self._event_cursor,
                limit=EVENT_PAGE,
                level="DEBUG",
            )
            # Pages come newest first; applied oldest first, so the last word is MAAS's last.
            for event in reversed(page["events"]):
                self._event_cursor = max(self._event_cursor, int(event["id"]))
                cluster = self._apply(str(event["node"]), str(event["description"]))
                if cluster:
                    given.add((str(event["node"]), cluster))
            if page["count"] < EVENT_PAGE:
                return given

    def _apply(self, system_id: str, description: str) -> str:
        """Apply one event; the cluster it allocated the machine to, if it is an allocation."""
        allocated = TO_ALLOCATED.search(description)
        if allocated:
            self.allocated_to[system_id] = allocated.group(1)
            self.transitions["allocated"] += 1
            return allocated.group(1)
        elif TO_READY in description:
            self.allocated_to[system_id] = ""
            self.transitions["ready"] += 1
        elif TO_FAILED_DEPLOYMENT in description:
            self.transitions["failed_deployment"] += 1
        return ""

    def observe(
        self,
        machines: list[dict[str, Any]],
        before: dict[str, str],
        given: set[tuple[str, str]],
    ) -> None:
        """Check a snapshot against `before` (holders when it was taken, at the latest) and
        `given` (allocations made between that point and the end of the snapshot)."""
        now = time.time()
        for raw in machines:
            system_id = raw["system_id"]
            cluster = owner_of(raw)
            if not cluster:
                continue
            self.owners_seen.setdefault(system_id, set()).add(cluster)
            # Only another cluster holding it, with no allocation to this one since, contradicts
            # the mark; a machine that was Ready may have been given to it after `before`.
            holder = before.get(system_id, "")
            if not holder or holder == cluster or (system_id, cluster) in given:
                continue
            if (system_id, holder, cluster) not in self._seen:
                self._seen.add((system_id, holder, cluster))
                self.violations.append(Violation(system_id, holder, cluster, now))


def owner_of(raw: dict[str, Any]) -> str:
    """The metalgate cluster a machine's owner_data names, or ""."""
    data = raw.get("owner_data") or {}
    return str(data.get(OWNER_DATA_CLUSTER, ""))


def held(raw: dict[str, Any]) -> bool:
    """Is the machine still taken: our owner_data on it, or any MAAS user owning it?

    Every MAAS user of the chaos emulator is metalgate, so an owner at the end is a leak even
    when the allocation never got its owner_data (agent_name, the other mark, is never shown).
    """
    return bool(owner_of(raw) or raw.get("owner"))
