"""Thousands of lightweight agents in one process, for benchmarks and chaos tests.

One scheduler loop drives every simulated node (no task per agent): a heap of due actions
(bring-up, heartbeat, command poll, outbox flush), a bounded number of requests in flight
on one pooled aiohttp session (httpx measured 5-30x slower here under concurrency). Each
node keeps the agent's guarantees: an ordered outbox whose status reports and command
results are retried with backoff until accepted.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import aiohttp

from agent import commands
from agent.api_client import (
    AgentApi,
    ApiRejected,
    ApiUnavailable,
    Transport,
    aiohttp_transport,
    result_report,
)
from agent.backends.simulated import kubeadm
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry, SimulatedCluster, SimulatedNode
from agent.outbox import Backoff, Outbox, Report, ReportKind
from agent.reports import LocalNode, NodeReporter
from agent.runtime import RunningAgentPublic
from agent.state import StateStore
from agent.stats import FleetStats, LatencyHistogram
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap, AgentCommand, CommandResult

log = logging.getLogger(__name__)


class Action(IntEnum):
    BRING_UP = 0
    HEARTBEAT = 1
    POLL = 2
    FLUSH = 3


@dataclass(eq=False)
class _Node:
    bootstrap: AgentBootstrap
    api: AgentApi
    cluster: SimulatedCluster
    simulated: SimulatedNode
    backend: SimulatedBackend
    reporter: NodeReporter
    backoff: Backoff
    node_ip: str
    outbox: Outbox = field(default_factory=Outbox)
    sending: bool = False
    flush_due: bool = False
    seen_commands: set[str] = field(default_factory=set)
    # Fleet nodes live and die with the process, so their command state stays in memory.
    store: StateStore = field(default_factory=lambda: StateStore(None))
    # Commands of one cluster run one after another, as on a real agent.
    command_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def leader(self) -> bool:
        return self.bootstrap.first_control_plane


class Fleet:
    """`add` bootstraps, then `run_for` (or `start`/`stop`); `stats` reads the counters.

    `rate` (heartbeats per second across the fleet) replaces each agent's own interval, so
    a benchmark can step the load; None keeps `timings.heartbeat_interval` per agent.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        timings: AgentTimings | None = None,
        max_in_flight: int = 256,
        poll_commands: bool = True,
        session: aiohttp.ClientSession | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_url = api_url
        self.timings = timings or AgentTimings.instant()
        # Ingest benchmarks switch polling off to measure heartbeats alone.
        self._poll_commands = poll_commands
        self._max_in_flight = max_in_flight
        self._session = session
        self._own_session = session is None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._rng = random.Random(seed)
        self._registry = ClusterRegistry()
        self._leaders: set[str] = set()
        self._nodes: dict[str, _Node] = {}
        self._heap: list[tuple[float, int, int, Action, str]] = []
        self._order = itertools.count()
        self._generation = 0
        self._rate: float | None = None
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._command_tasks: set[asyncio.Task[None]] = set()
        self._shared_transport: Transport | None = None
        self.reset_stats()

    def __len__(self) -> int:
        return len(self._nodes)

    # --- membership --------------------------------------------------------------------

    def add(self, bootstrap: AgentBootstrap, node_ip: str = "127.0.0.1") -> None:
        """A node boots: it brings itself up, then heartbeats (and polls, on the leader)."""
        self.remove(bootstrap.system_id)
        node = SimulatedNode(bootstrap.hostname, bootstrap.system_id, bootstrap.role)
        cluster = self._registry.attach(bootstrap.cluster_id, bootstrap.kubernetes_version)
        if bootstrap.first_control_plane:
            self._leaders.add(bootstrap.cluster_id)
        api_url = self.api_url or bootstrap.api_url
        self._nodes[bootstrap.system_id] = _Node(
            bootstrap=bootstrap,
            api=AgentApi(self._transport(), api_url, bootstrap.agent_token),
            cluster=cluster,
            simulated=node,
            backend=SimulatedBackend(
                bootstrap, cluster, node, timings=self.timings, node_ip=node_ip
            ),
            reporter=NodeReporter(LocalNode.of(bootstrap)),
            backoff=Backoff(self.timings.backoff_initial, self.timings.backoff_max, self._rng),
            node_ip=node_ip,
        )
        delay = (
            self.timings.kubeadm_init
            if bootstrap.first_control_plane
            else self.timings.kubeadm_join
        )
        self._schedule(delay, Action.BRING_UP, bootstrap.system_id)

    def remove(self, system_id: str) -> bool:
        """The machine is released: its node leaves and nothing more is sent for it."""
        node = self._nodes.pop(system_id, None)
        if node is None:
            return False
        node.cluster.leave(node.simulated.hostname)
        if node.leader:
            self._leaders.discard(node.bootstrap.cluster_id)
            node.cluster.control_plane_ready.clear()
        self._registry.detach(node.cluster)
        return True

    # The agent runtime's host interface, so `build_runtime_app` can serve a fleet.
    async def deployed(self, bootstrap: AgentBootstrap, node_ip: str) -> None:
        self.add(bootstrap, node_ip)

    async def released(self, system_id: str) -> bool:
        return self.remove(system_id)

    def public(self) -> list[RunningAgentPublic]:
        return [
            RunningAgentPublic(
                system_id=system_id,
                hostname=n.reporter.node.hostname,
                cluster_id=n.bootstrap.cluster_id,
                role=n.reporter.node.role,
                ready=n.reporter.node.ready,
                kubelet_version=n.reporter.node.kubelet_version,
                pending_reports=len(n.outbox),
            )
            for system_id, n in self._nodes.items()
        ]

    # --- running -----------------------------------------------------------------------

    async def run_for(self, seconds: float, rate: float | None = None) -> FleetStats:
        """Run `seconds` with fresh counters and return them; the fleet then pauses."""
        self.reset_stats()
        self.start(rate)
        try:
            await asyncio.sleep(seconds)
        finally:
            await self.pause()
        return self.stats()

    def start(self, rate: float | None = None) -> None:
        """Run in the background (from a running event loop) until `pause` or `close`."""
        self._rate = rate
        self._generation += 1
        for system_id, node in self._nodes.items():
            if node.reporter.node.ready:
                self._schedule_heartbeat(system_id, stagger=True)
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._scheduler(), name="fleet scheduler")
        self._wakeup.set()

    async def pause(self) -> None:
        """Stop scheduling and let the requests in flight finish."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await asyncio.gather(*self._requests, return_exceptions=True)

    async def close(self) -> None:
        await self.pause()
        for task in self._command_tasks:
            task.cancel()
        await asyncio.gather(*self._command_tasks, return_exceptions=True)
        if self._own_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _transport(self) -> Transport:
        """One pooled session for the whole fleet, made on first use inside the event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_in_flight),
                timeout=aiohttp.ClientTimeout(total=self.timings.request_timeout),
            )
        if self._shared_transport is None:
            self._shared_transport = aiohttp_transport(self._session)
        return self._shared_transport

    # --- counters ----------------------------------------------------------------------

    def reset_stats(self) -> None:
        self._started = time.monotonic()
        self._latency = LatencyHistogram()
        self._heartbeats_sent = 0
        self._delivered: dict[ReportKind, int] = dict.fromkeys(ReportKind, 0)
        self._heartbeats_signalled = 0
        self._commands_run = 0
        self._errors = 0
        self._rejected = 0

    def stats(self) -> FleetStats:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        ok = self._delivered[ReportKind.HEARTBEAT]
        return FleetStats(
            agents=len(self._nodes),
            ready_agents=sum(1 for n in self._nodes.values() if n.reporter.node.ready),
            elapsed_seconds=round(elapsed, 3),
            heartbeats_sent=self._heartbeats_sent,
            heartbeats_ok=ok,
            heartbeat_rate=round(ok / elapsed, 1),
            heartbeats_signalled=self._heartbeats_signalled,
            statuses_ok=self._delivered[ReportKind.STATUS],
            results_ok=self._delivered[ReportKind.COMMAND_RESULT],
            commands_run=self._commands_run,
            errors=self._errors,
            rejected=self._rejected,
            pending_reports=sum(len(n.outbox) for n in self._nodes.values()),
            latency_p50_ms=round(self._latency.percentile(0.50) * 1000, 2),
            latency_p95_ms=round(self._latency.percentile(0.95) * 1000, 2),
            latency_p99_ms=round(self._latency.percentile(0.99) * 1000, 2),
            latency_max_ms=round(self._latency.maximum * 1000, 2),
        )

    # --- the scheduler -----------------------------------------------------------------

    def _schedule(self, delay: float, action: Action, system_id: str) -> None:
        entry = (time.monotonic() + delay, next(self._order), self._generation, action, system_id)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._wakeup.set()  # the scheduler may be sleeping towards a later entry

    def _heartbeat_interval(self) -> float:
        if self._rate:
            return max(len(self._nodes), 1) / self._rate
        return self.timings.heartbeat_interval

    def _schedule_heartbeat(self, system_id: str, stagger: bool = False) -> None:
        interval = self._heartbeat_interval()
        self._schedule(
            self._rng.uniform(0, interval) if stagger else interval, Action.HEARTBEAT, system_id
        )

    async def _scheduler(self) -> None:
        while True:
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due, _, generation, action, system_id = self._heap[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                except TimeoutError:
                    pass
                continue
            heapq.heappop(self._heap)
            node = self._nodes.get(system_id)
            if node is None or (action is Action.HEARTBEAT and generation != self._generation):
                continue  # released machine, or a heartbeat from before a rate change
            await self._dispatch(action, system_id, node)

    async def _dispatch(self, action: Action, system_id: str, node: _Node) -> None:
        if action is Action.BRING_UP:
            self._bring_up(system_id, node)
        elif action is Action.HEARTBEAT:
            self._heartbeats_sent += 1
            self._queue(system_id, node, node.reporter.heartbeat())
            self._schedule_heartbeat(system_id)
        elif action is Action.POLL:
            await self._request(lambda: self._poll(node))
            self._schedule(self.timings.command_poll_interval, Action.POLL, system_id)
        else:
            node.flush_due = False
            if not node.sending and node.outbox.head() is not None:
                await self._request(lambda: self._send_head(system_id, node))

    async def _request(self, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start one request when a slot is free: the scheduler waits, so load stays bounded."""
        await self._slots.acquire()
        task = asyncio.create_task(self._release_after(start()))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _release_after(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        finally:
            self._slots.release()

    def _bring_up(self, system_id: str, node: _Node) -> None:
        cluster = node.cluster
        waiting = not node.leader and node.bootstrap.cluster_id in self._leaders
        if waiting and not cluster.control_plane_ready.is_set():
            self._schedule(0.05, Action.BRING_UP, system_id)  # kubeadm join retries
            return
        simulated = node.simulated
        if node.leader:
            node.reporter.kubeconfig = kubeadm.admin_kubeconfig(
                node.bootstrap.cluster_name, node.node_ip
            )
        node.reporter.control_plane_ready = True
        simulated.ready = True
        cluster.join(simulated, lambda: self._report_if_changed(system_id))
        if node.leader:
            cluster.control_plane_ready.set()
            if self._poll_commands:
                self._schedule(self.timings.command_poll_interval, Action.POLL, system_id)
        self._schedule_heartbeat(system_id, stagger=True)

    def _report_if_changed(self, system_id: str) -> None:
        node = self._nodes.get(system_id)
        if node is None:
            return
        node.reporter.node.update(node.simulated.state())
        if (report := node.reporter.status_if_changed()) is not None:
            self._queue(system_id, node, report)

    def _queue(self, system_id: str, node: _Node, report: Report) -> None:
        node.outbox.put(report)
        if not node.sending and not node.flush_due:
            node.flush_due = True
            self._schedule(0, Action.FLUSH, system_id)

    async def _send_head(self, system_id: str, node: _Node) -> None:
        report = node.outbox.head()
        if report is None or node.sending:
            return
        node.sending = True
        started = time.monotonic()
        try:
            ack = await node.api.send(report)
        except ApiUnavailable:
            self._errors += 1
            node.sending = False
            node.flush_due = True
            self._schedule(node.backoff.next_delay(), Action.FLUSH, system_id)
            return
        except ApiRejected as error:
            self._rejected += 1
            log.warning("fleet node %s: report refused: %s", system_id, error)
        else:
            self._delivered[report.kind] += 1
            if report.kind is ReportKind.HEARTBEAT:
                self._latency.record(time.monotonic() - started)
                self._heartbeats_signalled += ack.signalled
        node.backoff.reset()
        node.outbox.pop(report)
        node.sending = False
        if node.outbox.head() is not None and system_id in self._nodes:
            node.flush_due = True
            self._schedule(0, Action.FLUSH, system_id)

    async def _poll(self, node: _Node) -> None:
        try:
            listing = await node.api.commands()
        except (ApiUnavailable, ApiRejected):
            self._errors += 1
            return
        for command in listing.commands:
            if command.id not in node.seen_commands:
                node.seen_commands.add(command.id)
                self._commands_run += 1
                task = asyncio.create_task(self._execute(node, command))
                self._command_tasks.add(task)
                task.add_done_callback(self._command_tasks.discard)

    async def _execute(self, node: _Node, command: AgentCommand) -> None:
        system_id = node.bootstrap.system_id

        def post(result: CommandResult) -> None:
            if system_id in self._nodes:
                self._queue(system_id, node, result_report(command.id, result))

        async with node.command_lock:
            await commands.execute(command, node.backend, node.store, post)
