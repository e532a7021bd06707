"""The control-plane worker: lifecycle workflows and control-plane activities on `control-plane`."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from domain.naming import CONTROL_PLANE_QUEUE
from runtime.schedules import (
    ensure_orphan_sweeps,
    ensure_reconcile_schedule,
    ensure_silence_sweep_schedule,
)
from runtime.settings import Settings
from runtime.temporal import connect_with_retry
from workflows.registry import CONTROL_PLANE_WORKFLOWS

log = logging.getLogger(__name__)


async def control_plane_activities(settings: Settings, client: Client) -> tuple[list[Any], Any]:
    """The control-plane activities with their store; returns (activities, database)."""
    # Imported here so this module (and `metalgate --help`) loads without the store.
    from activities.control_plane import ControlPlaneActivities
    from activities.orphans import OrphanActivities
    from activities.reconcile import ReconcileActivities
    from store.db import Database
    from store.secrets import SecretBox

    database = await Database.open(settings)
    lifecycle = ControlPlaneActivities(database.sessions, client, settings).all()
    box = SecretBox.from_settings(settings)
    orphans = OrphanActivities(database.sessions, box).all()
    reconcile = ReconcileActivities(database.sessions, client, settings, box).all()
    return lifecycle + orphans + reconcile, database


def build_worker(
    client: Client, activities: list[Any], task_queue: str = CONTROL_PLANE_QUEUE
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=CONTROL_PLANE_WORKFLOWS,
        activities=activities,
        # SIGTERM lets short control-plane activities finish instead of retrying them.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_control_plane_worker(settings: Settings, *, client: Client | None = None) -> None:
    """Run until SIGINT or SIGTERM, then finish in-flight activities and stop."""
    client = client or await connect_with_retry(settings)
    await ensure_silence_sweep_schedule(
        client,
        silence_seconds=settings.agent_silence_timeout,
        node_silence_seconds=settings.agent_node_silence_timeout,
    )
    activities, database = await control_plane_activities(settings, client)
    from activities.orphans import registered_gateways

    gateways = await registered_gateways(
        database.sessions, system_gateway=settings.mode == "self-hosted"
    )
    await ensure_orphan_sweeps(client, gateways)
    await ensure_reconcile_schedule(client, every=timedelta(seconds=settings.reconcile_interval))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with build_worker(client, activities):
            log.info("control-plane worker polling %s", CONTROL_PLANE_QUEUE)
            await stop.wait()
            log.info("control-plane worker stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await database.close()
