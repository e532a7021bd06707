"""The FastAPI application: `create_app(settings)` builds it, uvicorn serves it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api import docs, errors
from api.agent_cache import DEFAULT_TTL, AgentCache
from api.agent_outbox import AgentOutboxSender
from api.audit import AuditLog
from api.auth import ensure_bootstrap
from api.heartbeats import HeartbeatRecorder
from api.metrics import ApiMetrics, RequestMetrics
from api.routes import accounts, agent, api_keys, audit, clusters, codec, gateways, health, projects
from api.routes.agent_package import router as agent_package_router
from api.temporal_gate import AGENT_SIGNAL_TIMEOUT, TemporalGate
from runtime.codec import EncryptionCodec
from runtime.settings import Settings
from runtime.temporal import codec_key_specs
from store.db import Database
from store.secrets import SecretBox

log = logging.getLogger(__name__)

ACCOUNT_VALIDATION_SECONDS = 20.0


def create_app(
    settings: Settings,
    *,
    temporal: Client | None = None,
    account_validation_seconds: float = ACCOUNT_VALIDATION_SECONDS,
    heartbeat_flush_seconds: float = 2.0,
    agent_cache_seconds: float = DEFAULT_TTL,
    agent_signal_timeout: float = AGENT_SIGNAL_TIMEOUT.total_seconds(),
    agent_coalesce_seconds: float = 1.0,
) -> FastAPI:
    """The API. Temporal is connected on first use, so reads work while it is down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await Database.open(settings)
        await ensure_bootstrap(db.sessions, settings)
        app.state.db = db
        app.state.heartbeats = HeartbeatRecorder(
            db.sessions,
            heartbeat_flush_seconds,
            # Fresh enough that a live node never looks silent to the sweep.
            node_every=settings.agent_node_silence_timeout / 4,
        )
        app.state.heartbeats.start()
        app.state.agent_cache.start(db.sessions)
        app.state.agent_outbox = AgentOutboxSender(
            db.sessions,
            app.state.temporal,
            signal_timeout=agent_signal_timeout,
            coalesce_seconds=agent_coalesce_seconds,
        )
        app.state.agent_outbox.start()
        metrics.watch(app.state.agent_cache, app.state.heartbeats)
        metrics.census.start(db.sessions)
        if settings.metrics_port:
            metrics.serve(settings.metrics_host, settings.metrics_port)
        try:
            yield
        finally:
            await app.state.agent_outbox.stop()
            await asyncio.to_thread(metrics.close)  # waits out the server's poll loop
            await metrics.census.stop()
            await app.state.agent_cache.stop()
            await app.state.heartbeats.stop()
            await db.close()

    app = FastAPI(
        title="metalgate",
        description="Kubernetes clusters on MAAS bare metal, driven by Temporal.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.box = SecretBox.from_settings(settings)
    app.state.codec = EncryptionCodec(codec_key_specs(settings))
    app.state.temporal = TemporalGate(settings, temporal, [metrics.interceptor()])
    app.state.agent_cache = AgentCache(ttl=agent_cache_seconds)
    app.state.account_validation_seconds = account_validation_seconds
    errors.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    app.add_middleware(errors.BodyLimit)
    app.add_middleware(AuditLog)
    app.add_middleware(RequestMetrics, metrics=metrics)
    for module in (health, projects, api_keys, gateways, accounts, clusters, agent, codec, audit):
        app.include_router(module.router)
    app.include_router(agent_package_router)
    docs.install(app)
    return app
