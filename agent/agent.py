"""One node's agent: brings the node up, then heartbeats, reports changes and runs commands."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from pathlib import Path

import httpx

from agent import commands
from agent.api_client import (
    AgentApi,
    ApiRejected,
    ApiUnavailable,
    httpx_transport,
    result_report,
)
from agent.node_backend import NodeBackend, NodeState
from agent.outbox import Backoff, Outbox, Report, ReportKind
from agent.reports import LocalNode, NodeReporter
from agent.state import StateStore
from agent.timings import AgentTimings
from domain.agent_wire import (
    AgentBootstrap,
    AgentCommand,
    CommandResult,
    NodeRole,
)

log = logging.getLogger(__name__)


class Agent:
    """Runs until cancelled. All traffic is outbound HTTP through `client`."""

    def __init__(
        self,
        bootstrap: AgentBootstrap,
        client: httpx.AsyncClient,
        backend: NodeBackend,
        *,
        state_dir: Path | None,
        timings: AgentTimings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`state_dir`: where the agent keeps what it ran (None: memory, lost on restart)."""
        self.bootstrap = bootstrap
        self.backend = backend
        self.timings = timings or AgentTimings()
        self.delivered: Counter[ReportKind] = Counter()
        self._api = AgentApi(httpx_transport(client), bootstrap.api_url, bootstrap.agent_token)
        self.node = LocalNode.of(bootstrap)
        self._reporter = NodeReporter(self.node)
        self._store = StateStore(state_dir)
        self._outbox = Outbox()
        self._wakeup = asyncio.Event()
        self._backoff = Backoff(self.timings.backoff_initial, self.timings.backoff_max, rng)
        # Commands taken up by this process; the state file covers earlier processes.
        self._taken: set[str] = set()

    @property
    def name(self) -> str:
        return f"{self.bootstrap.cluster_name}/{self.bootstrap.hostname}"

    @property
    def pending(self) -> int:
        return len(self._outbox)

    async def run(self) -> None:
        log.info("agent %s starting (%s)", self.name, self.bootstrap.role)
        state = await self._store.load()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._deliver_forever())
                tasks.create_task(self._heartbeat_forever())
                await self.backend.bring_up(self._on_phase)
                if self.bootstrap.first_control_plane and not state.kubeconfig_reported:
                    self._reporter.kubeconfig = await self.backend.admin_kubeconfig()
                    state.kubeconfig_reported = True
                    await self._store.save()
                # A finished init or join means the API server answers, seen from this node.
                self._reporter.control_plane_ready = True
                tasks.create_task(self.backend.watch_self(self._on_node_change))
                # Every control-plane agent asks; the API hands each command to the node
                # that runs it (the runner it names, else the first control-plane machine
                # recorded), so another takes over when a repave replaces the first.
                if self.bootstrap.role == NodeRole.CONTROL_PLANE:
                    tasks.create_task(self._poll_commands_forever())
        finally:
            await self.backend.close()
            log.info("agent %s stopped with %d reports pending", self.name, self.pending)

    def _on_phase(self, message: str) -> None:
        self.node.message = message

    def _on_node_change(self, state: NodeState) -> None:
        was_ready = self.node.ready
        self.node.update(state)
        if self.node.ready and not was_ready:
            log.info("agent %s: node ready at %s", self.name, self.node.kubelet_version)
        self._report_if_changed()

    def _report_if_changed(self) -> None:
        report = self._reporter.status_if_changed()
        if report is not None:
            self._queue(report)

    async def _heartbeat_forever(self) -> None:
        while True:
            self._queue(self._reporter.heartbeat())
            await asyncio.sleep(self.timings.heartbeat_interval)

    async def _poll_commands_forever(self) -> None:
        # The first control plane runs the cluster's commands; another one polls slower until
        # it is handed one (it was named a runner, or took over from a replaced first).
        handed = self.bootstrap.first_control_plane
        while True:
            try:
                listing = await self._api.commands(self.bootstrap.hostname)
            except (ApiUnavailable, ApiRejected) as error:
                log.info("agent %s: command poll failed: %s", self.name, error)
                listing = None
            for command in listing.commands if listing else []:
                handed = True
                if command.id not in self._taken:
                    self._taken.add(command.id)
                    await self._execute(command)
            timings = self.timings
            fast = timings.command_poll_interval
            await asyncio.sleep(fast if handed else timings.standby_command_poll_interval)

    async def _execute(self, command: AgentCommand) -> None:
        log.info("agent %s: running %s command %s", self.name, command.kind, command.id)

        def post(result: CommandResult) -> None:
            self._queue(result_report(command.id, result))

        await commands.execute(command, self.backend, self._store, post)

    def _queue(self, report: Report) -> None:
        self._outbox.put(report)
        self._wakeup.set()

    async def _deliver_forever(self) -> None:
        while True:
            await self.flush()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def flush(self) -> None:
        """Send the outbox in order until empty, retrying with backoff while the API is away.

        Also called after `run` stopped, so a stopping agent delivers what it holds.
        """
        while (report := self._outbox.head()) is not None:
            try:
                await self._api.send(report)
            except ApiUnavailable as error:
                delay = self._backoff.next_delay()
                log.info("agent %s: API unavailable (%s); retry in %.2fs", self.name, error, delay)
                await asyncio.sleep(delay)
                continue
            except ApiRejected as error:
                # Retrying an identical refused body would block every later report.
                log.warning("agent %s: dropped a report the API refused: %s", self.name, error)
            else:
                self.delivered[report.kind] += 1
            self._backoff.reset()
            self._outbox.pop(report)
