"""One node's agent: brings the node up, then heartbeats, reports changes and runs commands."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

import httpx

from agent import commands, kubeadm
from agent.api_client import (
    AgentApi,
    ApiRejected,
    ApiUnavailable,
    httpx_transport,
    result_report,
)
from agent.cluster import ClusterRegistry, SimulatedCluster, SimulatedNode
from agent.outbox import Backoff, Outbox, Report, ReportKind
from agent.reports import NodeReporter
from agent.timings import AgentTimings
from domain.agent_wire import (
    AgentBootstrap,
    AgentCommand,
    AgentCommandResult,
)

log = logging.getLogger(__name__)


class Agent:
    """Runs until cancelled. All traffic is outbound HTTP through `client`."""

    def __init__(
        self,
        bootstrap: AgentBootstrap,
        client: httpx.AsyncClient,
        *,
        timings: AgentTimings | None = None,
        node_ip: str = "127.0.0.1",
        registry: ClusterRegistry | None = None,
        wait_for_control_plane: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        """`wait_for_control_plane`: joining nodes wait for the first control plane in
        `registry`; a lone agent (one process per node) cannot see it and joins after
        the join delay instead."""
        self.bootstrap = bootstrap
        self.timings = timings or AgentTimings()
        self.node_ip = node_ip
        self.delivered: Counter[ReportKind] = Counter()
        self._api = AgentApi(httpx_transport(client), bootstrap.api_url, bootstrap.agent_token)
        self._registry = registry or ClusterRegistry()
        self.node = SimulatedNode(bootstrap.hostname, bootstrap.system_id, bootstrap.role)
        self._reporter = NodeReporter(self.node)
        self._outbox = Outbox()
        self._wakeup = asyncio.Event()
        self._backoff = Backoff(self.timings.backoff_initial, self.timings.backoff_max, rng)
        self._seen_commands: set[str] = set()
        self._wait_for_control_plane = wait_for_control_plane

    @property
    def name(self) -> str:
        return f"{self.bootstrap.cluster_name}/{self.bootstrap.hostname}"

    @property
    def pending(self) -> int:
        return len(self._outbox)

    async def run(self) -> None:
        log.info("agent %s starting (%s)", self.name, self.bootstrap.role)
        cluster = self._registry.attach(
            self.bootstrap.cluster_id, self.bootstrap.kubernetes_version
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._deliver_forever())
                tasks.create_task(self._heartbeat_forever())
                await self._bring_up(cluster)
                if self.bootstrap.first_control_plane:
                    tasks.create_task(self._poll_commands_forever(cluster))
        finally:
            cluster.leave(self.node.hostname)
            if self.bootstrap.first_control_plane:
                cluster.control_plane_ready.clear()
            self._registry.detach(cluster)
            log.info("agent %s stopped with %d reports pending", self.name, self.pending)

    async def _bring_up(self, cluster: SimulatedCluster) -> None:
        if self.bootstrap.first_control_plane:
            await kubeadm.run_phases(
                kubeadm.INIT_PHASES, self.timings.kubeadm_init, self._on_phase("kubeadm init")
            )
            self._reporter.kubeconfig = kubeadm.admin_kubeconfig(
                self.bootstrap.cluster_name, self.node_ip
            )
        else:
            await kubeadm.run_phases(
                kubeadm.JOIN_PHASES, self.timings.kubeadm_join, self._on_phase("kubeadm join")
            )
            if self._wait_for_control_plane:
                # kubeadm join retries until the API server answers; so do we.
                await cluster.control_plane_ready.wait()
        # A finished init or join means the API server answers, seen from this node.
        self._reporter.control_plane_ready = True
        self.node.ready = True
        self.node.kubelet_version = cluster.kubernetes_version
        self.node.message = ""
        cluster.join(self.node, self._report_if_changed)
        if self.bootstrap.first_control_plane:
            cluster.control_plane_ready.set()
        log.info("agent %s: node ready at %s", self.name, self.node.kubelet_version)

    def _on_phase(self, step: str) -> kubeadm.PhaseCallback:
        def record(phase: str) -> None:
            self.node.message = f"{step}: {phase}"

        return record

    def _report_if_changed(self) -> None:
        report = self._reporter.status_if_changed()
        if report is not None:
            self._queue(report)

    async def _heartbeat_forever(self) -> None:
        while True:
            self._queue(self._reporter.heartbeat())
            await asyncio.sleep(self.timings.heartbeat_interval)

    async def _poll_commands_forever(self, cluster: SimulatedCluster) -> None:
        while True:
            try:
                listing = await self._api.commands()
            except (ApiUnavailable, ApiRejected) as error:
                log.info("agent %s: command poll failed: %s", self.name, error)
                listing = None
            for command in listing.commands if listing else []:
                if command.id not in self._seen_commands:
                    self._seen_commands.add(command.id)
                    await self._execute(command, cluster)
            await asyncio.sleep(self.timings.command_poll_interval)

    async def _execute(self, command: AgentCommand, cluster: SimulatedCluster) -> None:
        log.info("agent %s: running %s command %s", self.name, command.kind, command.id)

        def post(result: AgentCommandResult) -> None:
            self._queue(result_report(command.id, result))

        await commands.execute(command, cluster, self.timings, post)

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
