"""One reader per gateway worker process for every machine a wait activity waits on.

Waiting for deploys and releases used to be a poll per machine per activity, so MAAS load
grew with the clusters in flight. Now each waiting activity registers the machines it waits
on here and this watcher reads MAAS once per interval per account for all of them, filtered
in MAAS by system id (`machines/?id=...`, never a full list), and hands each waiter its
machines' reading. The activities keep heartbeating while they wait, so workflow code,
timeouts and retries are unchanged; a cancelled activity only leaves the watch.

A read that fails reaches every waiter of that account, as its own read would have: each
activity attempt fails with the mapped MAAS error and Temporal retries it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from temporalio import activity

from activities.maas_answers import MACHINES, MaasMachine
from activities.maas_session import HEARTBEAT_EVERY, MaasSessions
from domain.maas import MaasAccount

log = logging.getLogger(__name__)

# System ids per read: 200 ids keep the request line near 2 KiB, well below the 8 KiB most
# front ends of MAAS accept; reads per interval are ceil(machines in transition / 200).
ID_BATCH = 200

Reading = dict[str, MaasMachine | None]


class Watch:
    """One waiter's view: the next reading of its machines (None: MAAS did not list it)."""

    def __init__(self, system_ids: frozenset[str], interval: float) -> None:
        self.system_ids = system_ids
        self.interval = interval
        self._latest: Reading | BaseException | None = None
        self._fresh = asyncio.Event()

    def deliver(self, outcome: Reading | BaseException) -> None:
        self._latest = outcome
        self._fresh.set()

    async def next(self) -> Reading:
        """The watcher's next reading of these machines; heartbeats while it waits."""
        beat = activity.in_activity() and activity.info().heartbeat_timeout is not None
        # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancel that
        # arrives as the reading does, and the activity would miss its one cancellation.
        fresh = asyncio.ensure_future(self._fresh.wait())
        try:
            while not fresh.done():
                await asyncio.wait({fresh}, timeout=HEARTBEAT_EVERY)
                if beat and not fresh.done():
                    activity.heartbeat("waiting for the MAAS watcher")
        finally:
            fresh.cancel()
        self._fresh.clear()
        outcome = self._latest
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


class _AccountWatch:
    """The waiters of one MAAS account and the task that reads for them."""

    def __init__(self, sessions: MaasSessions, account: MaasAccount) -> None:
        self._sessions = sessions
        self._account = account
        self.waiters: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, watch: Watch) -> None:
        self.waiters.add(watch)
        if self._task is None or self._task.done():
            # A fresh context: the reader serves every waiter, it is not part of the activity
            # that happened to arrive first (and must not heartbeat on its behalf).
            self._task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )

    def remove(self, watch: Watch) -> None:
        self.waiters.discard(watch)
        if not self.waiters and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self.waiters:
            waiters = list(self.waiters)
            wanted = sorted(set().union(*(w.system_ids for w in waiters)))
            try:
                found = await self._read(wanted)
            except Exception as error:  # each waiter raises it, as its own read would have
                for watch in waiters:
                    watch.deliver(error)
            else:
                for watch in waiters:
                    watch.deliver({sid: found.get(sid) for sid in watch.system_ids})
            await asyncio.sleep(min(w.interval for w in waiters))

    async def _read(self, system_ids: list[str]) -> dict[str, MaasMachine]:
        found: dict[str, MaasMachine] = {}
        for start in range(0, len(system_ids), ID_BATCH):
            batch = system_ids[start : start + ID_BATCH]
            machines = await self._sessions.call(
                self._account, "Machines", "read", MACHINES, id=batch
            )
            found.update((m.system_id, m) for m in machines)
        return found


class MachineWatcher:
    """The gateway worker's one watcher; one reading loop per MAAS account with waiters."""

    def __init__(self, sessions: MaasSessions) -> None:
        self._sessions = sessions
        self._accounts: dict[tuple[str, str], _AccountWatch] = {}

    @asynccontextmanager
    async def watch(
        self, account: MaasAccount, system_ids: Iterable[str], interval: float
    ) -> AsyncIterator[Watch]:
        """Readings of `system_ids` at least every `interval` seconds while inside."""
        key = (account.url, account.api_key)
        group = self._accounts.get(key)
        if group is None:
            group = self._accounts[key] = _AccountWatch(self._sessions, account)
        watch = Watch(frozenset(system_ids), interval)
        group.add(watch)
        try:
            yield watch
        finally:
            group.remove(watch)
            if not group.waiters:
                self._accounts.pop(key, None)

    def watched(self) -> set[str]:
        """Every system id some activity waits on now."""
        return {sid for g in self._accounts.values() for w in g.waiters for sid in w.system_ids}
