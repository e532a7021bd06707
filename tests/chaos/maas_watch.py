"""The chaos checker's eye on MAAS: who owns each machine, over time, as MAAS itself says.

It polls the emulator's MAAS API (machines, and the event log for transitions a poll could
miss) and keeps, per system id, the last cluster named in owner_data. A machine may change
owner only after it went back to Ready in between; anything else is a double ownership.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.naming import OWNER_DATA_CLUSTER

READY = "Ready"
TO_READY = "to 'Ready'"
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
    previous: str
    new: str
    at: float

    def __str__(self) -> str:
        return f"{self.system_id}: owned by {self.previous}, then {self.new} without Ready"


@dataclass
class MaasWatch:
    """Poll with `run()` until cancelled; read the findings afterwards."""

    maas_url: str
    api_key: str
    interval: float = 0.5
    owner: dict[str, str] = field(default_factory=dict)
    freed: dict[str, bool] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    owners_seen: dict[str, set[str]] = field(default_factory=dict)
    transitions: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    unavailable: int = 0
    _event_cursor: int = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.maas_url, timeout=30.0) as http:
            while True:
                # The emulator may be down or answer an injected 503: the next poll catches up,
                # and the event log replays every Ready the gap could have hidden.
                with contextlib.suppress(httpx.HTTPError):
                    await self.poll(http)
                await asyncio.sleep(self.interval)

    async def poll(self, http: httpx.AsyncClient) -> None:
        await self._read_events(http)
        self.observe(await self._get(http, "machines/"))
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

    async def _read_events(self, http: httpx.AsyncClient) -> None:
        while True:
            page = await self._get(
                http,
                "events/",
                op="query",
                after=self._event_cursor,
                limit=EVENT_PAGE,
                level="DEBUG",
            )
            # Oldest first, so a Ready is applied before the owner change that follows it.
            for event in reversed(page["events"]):
                self._event_cursor = max(self._event_cursor, int(event["id"]))
                description = str(event["description"])
                if TO_READY in description:
                    self.freed[event["node"]] = True
                    self.transitions["ready"] += 1
                elif TO_FAILED_DEPLOYMENT in description:
                    self.transitions["failed_deployment"] += 1
            if page["count"] < EVENT_PAGE:
                return

    def observe(self, machines: list[dict[str, Any]]) -> None:
        now = time.time()
        for raw in machines:
            system_id = raw["system_id"]
            if raw.get("status_name") == READY:
                self.freed[system_id] = True
            cluster = owner_of(raw)
            if not cluster:
                continue
            self.owners_seen.setdefault(system_id, set()).add(cluster)
            previous = self.owner.get(system_id)
            if previous is not None and previous != cluster and not self.freed.get(system_id):
                self.violations.append(Violation(system_id, previous, cluster, now))
            self.owner[system_id] = cluster
            self.freed[system_id] = False


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
