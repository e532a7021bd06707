"""The sender of agent reports: turns the outbox (store/agent_outbox.py) into signals.

Each round claims a batch of due clusters under a lease, signals them concurrently with no
store session open, then settles the batch in one transaction. A cluster is in at most one
round at a time (the lease, across replicas too), so it has at most one signal in flight;
changes that arrive meanwhile are sent together afterwards, at most once per
`coalesce_seconds`, which keeps a storm of reports far below Temporal's per-run signal
limit. A refused or unanswered signal is retried with backoff: a report is never dropped
while its cluster's workflow may still take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from api.agent_reports import Delivery, aggregate, signal_report
from api.temporal_gate import AGENT_SIGNAL_TIMEOUT, TemporalGate
from domain.phases import TERMINAL_PHASES, Phase
from store.agent_outbox import ClaimedReport, RetryLater, claim, settle
from store.db import SessionFactory
from workflows.contracts import AgentReport

log = logging.getLogger(__name__)


def report_of(claimed: ClaimedReport) -> AgentReport:
    """The signal's payload: the nodes changed since the last delivery, summed over all."""
    others = [n.state for n in claimed.nodes if not n.pending]
    changed = [n.state for n in claimed.changed]
    return aggregate(others, changed, claimed.kubernetes_version)


def backoff_seconds(attempts: int, delivery: Delivery, cap: float) -> float:
    """1, 2, 4 ... seconds up to `cap`; a cluster without a workflow waits the longest."""
    if delivery == Delivery.NO_WORKFLOW:
        return cap
    return float(min(cap, 2 ** min(attempts, 10)))


class AgentOutboxSender:
    def __init__(
        self,
        sessions: SessionFactory,
        gate: TemporalGate,
        *,
        batch: int = 500,
        concurrency: int = 64,
        coalesce_seconds: float = 1.0,
        poll_seconds: float = 0.5,
        signal_timeout: float = AGENT_SIGNAL_TIMEOUT.total_seconds(),
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._gate = gate
        self._batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self._coalesce = coalesce_seconds
        self._poll = poll_seconds
        self._signal_timeout = timedelta(seconds=signal_timeout)
        # Longer than any round can take: a lease runs out only when its sender died.
        self._lease_seconds = 3 * signal_timeout + 30
        self._max_backoff = max_backoff_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.retried = 0

    def nudge(self) -> None:
        """A change was committed: start a round now rather than at the next poll."""
        self._wake.set()

    async def deliver(self, claimed: ClaimedReport) -> Delivery:
        """Where a stored change becomes a signal (one per cluster per round)."""
        async with self._limit:
            return await signal_report(
                self._gate,
                claimed.cluster_id,
                Phase(claimed.phase),
                report_of(claimed),
                self._signal_timeout,
            )

    async def run_once(self) -> int:
        """One round: claim, signal, settle. Returns how many clusters it claimed."""
        batch = await claim(self._sessions, limit=self._batch, lease_seconds=self._lease_seconds)
        if not batch:
            return 0
        dropped = [c for c in batch if Phase(c.phase) in TERMINAL_PHASES]
        live = [c for c in batch if Phase(c.phase) not in TERMINAL_PHASES]
        outcomes = await asyncio.gather(*(self.deliver(c) for c in live))
        delivered = [c for c, o in zip(live, outcomes, strict=True) if o == Delivery.DELIVERED]
        retry = [
            RetryLater(
                report=c,
                delay_seconds=backoff_seconds(c.attempts, o, self._max_backoff),
                error=str(o),
            )
            for c, o in zip(live, outcomes, strict=True)
            if o != Delivery.DELIVERED
        ]
        await settle(
            self._sessions,
            delivered=delivered,
            retry=retry,
            dropped=dropped,
            coalesce_seconds=self._coalesce,
        )
        self.delivered += len(delivered)
        self.retried += len(retry)
        if retry:
            log.warning(
                "agent outbox: %d of %d reports not signalled (%s); retrying with backoff",
                len(retry),
                len(batch),
                ", ".join(sorted({r.error for r in retry})),
            )
        return len(batch)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # a nudge from now on starts another round
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("agent outbox round failed; retrying")
                claimed = 0
            if claimed >= self._batch:
                continue  # more are due
            # The poll finds rows of other replicas whose lease ran out and backoffs that ended.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="agent-outbox-sender")

    async def stop(self) -> None:
        """Rows of an unfinished round keep their lease; another replica (or this one after a
        restart) sends them once it runs out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
