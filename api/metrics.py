"""The API's Prometheus metrics: requests, agent heartbeats, signals, cache, lifecycle gauges.

Served on their own loopback port (METALGATE_METRICS_PORT), not on the API's: a scrape needs
no API key and the API's port may face the internet. Dashboards query these names
(deploy/grafana/dashboards/metalgate.json).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Interceptor, OutboundInterceptor, SignalWorkflowInput

from domain.phases import Phase
from store.models import Cluster

if TYPE_CHECKING:
    from api.agent_cache import AgentCache
    from api.heartbeats import HeartbeatRecorder
    from store.db import SessionFactory

log = logging.getLogger(__name__)

# The latency of an API call: a heartbeat takes a millisecond, a cluster create a second.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CENSUS_SECONDS = 10.0


class ApiMetrics:
    """Every metric the API serves, in one registry per app (tests run several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "metalgate_api_requests",
            "API requests by method, route template and status code",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "metalgate_api_request_duration_seconds",
            "API request latency by method and route template",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.signals = Counter(
            "metalgate_temporal_signals",
            "signals the API sent to workflows, by signal name and outcome",
            ["signal", "outcome"],
            registry=self.registry,
        )
        self.census = ClusterCensus()
        self.registry.register(self.census)
        self._server: Any = None

    def watch(self, cache: AgentCache, heartbeats: HeartbeatRecorder) -> None:
        """Serve the agent path's counters from the objects that keep them."""
        self.registry.register(AgentPathCollector(cache, heartbeats))

    def serve(self, host: str, port: int) -> None:
        self._server, _ = start_http_server(port, host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def interceptor(self) -> Interceptor:
        return _SignalCounter(self.signals)


class AgentPathCollector(Collector):
    """Heartbeats received and agent cache lookups, read at scrape time."""

    def __init__(self, cache: AgentCache, heartbeats: HeartbeatRecorder) -> None:
        self.cache = cache
        self.heartbeats = heartbeats

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "metalgate_agent_heartbeats",
            "agent heartbeats received",
            value=self.heartbeats.received,
        )
        lookups = CounterMetricFamily(
            "metalgate_agent_cache_lookups",
            "agent cache lookups on the heartbeat path, by result (hit: no store read)",
            labels=["result"],
        )
        lookups.add_metric(["hit"], self.cache.hits)
        lookups.add_metric(["miss"], self.cache.misses)
        yield lookups


class ClusterCensus(Collector):
    """Clusters by phase, reason and gateway, counted in the store every CENSUS_SECONDS."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def count(self, sessions: SessionFactory) -> None:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(Cluster.phase, Cluster.reason, Cluster.gateway_id, func.count())
                    .where(Cluster.phase != Phase.DELETED)
                    .group_by(Cluster.phase, Cluster.reason, Cluster.gateway_id)
                )
            ).all()
        self.counts = {(p, r or "", g): n for p, r, g, n in rows}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clusters = GaugeMetricFamily(
            "metalgate_clusters",
            "clusters not deleted, by phase, waiting or failure reason, and gateway",
            labels=["phase", "reason", "gateway"],
        )
        for (phase, reason, gateway), n in sorted(self.counts.items()):
            clusters.add_metric([phase, reason, gateway], n)
        yield clusters

    def start(self, sessions: SessionFactory) -> None:
        self._task = asyncio.create_task(self._loop(sessions))

    async def _loop(self, sessions: SessionFactory) -> None:
        while True:
            try:
                await self.count(sessions)
            except Exception as error:  # the store is down: keep the last count, retry
                log.warning("cluster census failed: %s", error)
            await asyncio.sleep(CENSUS_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RequestMetrics:
    """ASGI middleware: count and time each request by its route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # FastAPI puts the matched route in the scope; an unmatched path is one label.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


class _SignalCounter(Interceptor):
    def __init__(self, signals: Counter) -> None:
        self.signals = signals

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _SignalOutbound(next, self.signals)


class _SignalOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, signals: Counter) -> None:
        super().__init__(next)
        self.signals = signals

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        try:
            await super().signal_workflow(input)
        except BaseException:
            self.signals.labels(input.signal, "error").inc()
            raise
        self.signals.labels(input.signal, "ok").inc()
