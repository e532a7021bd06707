"""Is a gateway up? Temporal's task-queue pollers first, the gateway's heartbeats second.

`queue_pollers` also tells `/readyz` whether a control-plane worker polls its queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from api.temporal_gate import TemporalGate, TemporalUnavailable
from domain.gateway import GatewayStatus
from domain.naming import gateway_queue
from store.types import utcnow

log = logging.getLogger(__name__)

# An idle live poller's last access cycles within ~60 s; a dead one stays listed for minutes.
POLLER_LIVE_SECONDS = 70.0
DESCRIBE_TIMEOUT = timedelta(seconds=2)
# Two missed heartbeats (15 s each by default): offline within 30 s of the last replica leaving.
HEARTBEATS_MISSED_OFFLINE = 2


@dataclass(frozen=True)
class Pollers:
    live: int
    last_access: datetime | None


async def activity_pollers(gate: TemporalGate, gateway_id: str) -> Pollers | None:
    """Live pollers of the gateway's queue, or None when Temporal does not answer."""
    return await queue_pollers(
        gate, gateway_queue(gateway_id), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )


async def queue_pollers(
    gate: TemporalGate, queue: str, task_type: TaskQueueType.ValueType
) -> Pollers | None:
    """Live pollers of one task type on `queue`, or None when Temporal does not answer."""
    try:
        client = await gate.client()
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=task_type,
            ),
            timeout=DESCRIBE_TIMEOUT,
        )
    except (TimeoutError, TemporalUnavailable, RPCError) as exc:
        log.debug("cannot describe task queue %s: %s", queue, exc)
        return None
    now = utcnow()
    accesses = [p.last_access_time.ToDatetime(tzinfo=UTC) for p in response.pollers]
    live = [a for a in accesses if (now - a).total_seconds() < POLLER_LIVE_SECONDS]
    return Pollers(live=len(live), last_access=max(accesses, default=None))


def gateway_status(
    *,
    gateway_id: str,
    registered: bool,
    pollers: Pollers | None,
    last_heartbeat: datetime | None,
    heartbeat_interval: float,
) -> tuple[GatewayStatus, str]:
    queue = gateway_queue(gateway_id)
    if not registered:
        return GatewayStatus.PENDING, "not registered yet: run the register command on its host"
    silent = last_heartbeat is not None and (utcnow() - last_heartbeat).total_seconds() > (
        HEARTBEATS_MISSED_OFFLINE * heartbeat_interval
    )
    if pollers is not None:
        # Temporal lists a stopped poller for about a minute; a replica's heartbeats stop with
        # it, so a heartbeating gateway that went quiet is offline even while still listed.
        if pollers.live and silent:
            return (
                GatewayStatus.OFFLINE,
                f"no heartbeat for over {HEARTBEATS_MISSED_OFFLINE * heartbeat_interval:.0f}s: "
                f"its workers stopped; start one with `metalgate gateway run`",
            )
        if pollers.live:
            return GatewayStatus.ONLINE, f"{pollers.live} worker(s) polling {queue}"
        return (
            GatewayStatus.OFFLINE,
            f"no worker polls {queue}: start it with `metalgate gateway run`",
        )
    fresh = last_heartbeat is not None and (utcnow() - last_heartbeat).total_seconds() < (
        3 * heartbeat_interval
    )
    if fresh:
        return GatewayStatus.ONLINE, "heartbeating (Temporal unreachable: pollers unknown)"
    return GatewayStatus.OFFLINE, "no recent heartbeat and Temporal unreachable"
