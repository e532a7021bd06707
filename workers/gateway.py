"""The gateway worker: MAAS activities on one gateway's queue, outbound connections only.

A PCG runs from its config file (`run_gateway_from_config`); the self-hosted control plane
runs the same code as the system gateway (`run_system_gateway`). Several replicas may poll
the same queue: Temporal hands each task to one of them, and an activity lost with a killed
replica is retried on another after its heartbeat or start-to-close timeout.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.maas import MaasActivities
from activities.maas_remediation import RemediationActivities
from activities.maas_session import MaasSessions
from domain.naming import SYSTEM_GATEWAY_ID, gateway_queue
from runtime import system_gateway_keys
from runtime.codec import gateway_key_spec
from runtime.settings import Settings
from runtime.temporal import codec_key_specs, connect_with_retry
from workers.gateway_api import HeartbeatSender
from workers.gateway_config import load_config

log = logging.getLogger(__name__)

# Time in-flight activities get to finish on SIGTERM before they are cancelled (and retried
# elsewhere); MAAS waits heartbeat, so a cancelled wait resumes on another replica.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# A cancel reaches an activity only with a heartbeat's answer. The SDK's default holds
# heartbeats back for 80 % of the heartbeat timeout (24 s for a 30 s one): a delete would
# wait that long for a cancelled MAAS wait, and a loaded replica would miss its timeout.
HEARTBEAT_THROTTLE = timedelta(seconds=3)


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


def build_gateway_worker(
    client: Client, task_queue: str, activities: MaasActivities, *, replica_id: str
) -> Worker:
    """A worker with only the MAAS activities, polling only `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        activities=[*activities.all(), *RemediationActivities(activities.sessions).all()],
        identity=f"{replica_id}@{task_queue}",
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )


async def run_gateway(
    client: Client,
    task_queue: str,
    stop: asyncio.Event,
    *,
    replica_id: str,
    activities: MaasActivities | None = None,
    heartbeat: HeartbeatSender | None = None,
) -> None:
    """Poll `task_queue` (and send heartbeats) until `stop` is set, then shut down cleanly."""
    activities = activities or MaasActivities()
    worker = build_gateway_worker(client, task_queue, activities, replica_id=replica_id)
    async with worker:
        log.info("gateway replica %s polling %s", replica_id, task_queue)
        beating = asyncio.create_task(heartbeat.run(stop)) if heartbeat else None
        await stop.wait()
        log.info("gateway replica %s stopping", replica_id)
        if beating is not None:
            await beating


async def run_gateway_from_config(
    path: Path,
    *,
    temporal_proxy: str | None = None,
    replica_id: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run one PCG replica from its registered config until SIGINT/SIGTERM (or `stop`)."""
    config = load_config(path)
    replica_id = replica_id or default_replica_id()
    client = await connect_with_retry(
        config.temporal_settings(),
        key_specs=config.codec_keys,
        http_connect_proxy=temporal_proxy or config.temporal_proxy,
    )
    if config.sealing_private_key is None:
        log.warning(
            "gateway %s was registered before sealing: its cloud accounts' keys stay unsealed "
            "until it is registered again (`metalgate gateway reissue-token`, then register)",
            config.gateway_id,
        )
    activities = MaasActivities(MaasSessions(keys=config.sealing_keys()))
    heartbeat = HeartbeatSender(
        config,
        replica_id=replica_id,
        sessions=activities.sessions,
        interval=config.heartbeat_interval,
        http_proxy=config.http_proxy,
    )
    stop = stop or stop_on_signals()
    await run_gateway(
        client,
        config.task_queue,
        stop,
        replica_id=replica_id,
        activities=activities,
        heartbeat=heartbeat,
    )


async def run_system_gateway(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the system private gateway on `gateway.system` until SIGINT/SIGTERM (or `stop`).

    It holds what a PCG holds: its own codec key (not the control plane's) and its own
    sealing key pair, made on first start in the data dir."""
    own_codec_key = gateway_key_spec(codec_key_specs(settings)[0], SYSTEM_GATEWAY_ID)
    keys = system_gateway_keys.load_or_create(settings)
    client = await connect_with_retry(settings, key_specs=[own_codec_key])
    await run_gateway(
        client,
        gateway_queue(SYSTEM_GATEWAY_ID),
        stop or stop_on_signals(),
        replica_id=default_replica_id(),
        activities=MaasActivities(MaasSessions(keys=keys)),
    )


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM, for a graceful shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
