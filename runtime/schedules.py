"""Every Temporal schedule metalgate keeps, made and updated from the client side.

The control-plane worker ensures them all at start; the API adds a gateway's orphan sweep
when the gateway registers. Workflow modules define what a run does, not when it runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.models import ReconcileClustersInput
from domain.lifecycle import DEFAULT_NODE_SILENCE_SECONDS, GatewayRef
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    ORPHAN_SWEEP_WORKFLOW,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW,
    SA_GATEWAY_ID,
    SILENCE_SWEEP_SCHEDULE_ID,
    SILENCE_SWEEP_WORKFLOW,
    orphan_sweep_schedule_id,
)
from workflows.contracts import OrphanSweepInput, SilenceSweepInput

log = logging.getLogger(__name__)

# The sweep runs a few times per silence window, so a silent agent is noticed within
# about silence + silence/4 seconds.
SWEEPS_PER_WINDOW = 4
MIN_SWEEP_INTERVAL = 5.0


def _every(interval: timedelta) -> ScheduleSpec:
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)])


# A run still going when the next is due is skipped, not doubled.
SKIP_OVERLAP = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)


async def _create_unless_exists(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    """Create the schedule; False when it exists already (every worker start tries)."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        log.debug("schedule %s already exists", schedule_id)
        return False
    log.info("created schedule %s", schedule_id)
    return True


async def ensure_silence_sweep_schedule(
    client: Client,
    *,
    silence_seconds: float,
    node_silence_seconds: float = DEFAULT_NODE_SILENCE_SECONDS,
) -> None:
    """The fleet-wide silence sweep, a few runs per (shorter) silence window; an existing
    schedule is brought to these settings, which come from the same settings object."""
    every = max(MIN_SWEEP_INTERVAL, min(silence_seconds, node_silence_seconds) / SWEEPS_PER_WINDOW)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SILENCE_SWEEP_WORKFLOW,
            SilenceSweepInput(
                silence_seconds=silence_seconds, node_silence_seconds=node_silence_seconds
            ),
            id=f"{SILENCE_SWEEP_SCHEDULE_ID}/run",
            task_queue=CONTROL_PLANE_QUEUE,
            execution_timeout=timedelta(seconds=every * 4),
        ),
        spec=_every(timedelta(seconds=every)),
        policy=SKIP_OVERLAP,
    )
    if await _create_unless_exists(client, SILENCE_SWEEP_SCHEDULE_ID, schedule):
        return

    def to_current(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(SILENCE_SWEEP_SCHEDULE_ID).update(to_current)


async def ensure_reconcile_schedule(client: Client, *, every: timedelta) -> None:
    """The fleet-wide reconciler (store against workflows)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            ReconcileClustersInput(),
            id=f"{RECONCILE_SCHEDULE_ID}/run",
            task_queue=CONTROL_PLANE_QUEUE,
            execution_timeout=max(every * 4, timedelta(minutes=10)),
        ),
        spec=_every(every),
        policy=SKIP_OVERLAP,
    )
    await _create_unless_exists(client, RECONCILE_SCHEDULE_ID, schedule)


def orphan_sweep_schedule(gateway: GatewayRef, *, every: timedelta, grace: timedelta) -> Schedule:
    """The schedule of one gateway's sweeps."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ORPHAN_SWEEP_WORKFLOW,
            OrphanSweepInput(gateway=gateway, grace_seconds=grace.total_seconds()),
            id=f"{orphan_sweep_schedule_id(gateway.id)}/run",
            task_queue=CONTROL_PLANE_QUEUE,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(SA_GATEWAY_ID, gateway.id)]
            ),
        ),
        spec=_every(every),
        policy=SKIP_OVERLAP,
    )


async def ensure_orphan_sweep_schedule(
    client: Client,
    gateway: GatewayRef,
    *,
    every: timedelta = timedelta(minutes=10),
    grace: timedelta = timedelta(minutes=10),
    replace: bool = True,
) -> None:
    """Create the gateway's sweep schedule; an existing one is brought to these settings
    unless `replace` is False (worker starts must not undo an operator's tuning)."""
    schedule = orphan_sweep_schedule(gateway, every=every, grace=grace)
    schedule_id = orphan_sweep_schedule_id(gateway.id)
    if await _create_unless_exists(client, schedule_id, schedule) or not replace:
        return

    def to_current(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(to_current)


async def ensure_orphan_sweeps(client: Client, gateways: list[GatewayRef]) -> list[str]:
    """One sweep schedule per gateway, an operator's tuning kept; returns the gateway ids.

    Called at every control-plane worker start with every registered gateway, so gateways
    registered before the sweeper existed, or while no worker ran, get theirs too.
    """
    for gateway in gateways:
        await ensure_orphan_sweep_schedule(client, gateway, replace=False)
    return [gateway.id for gateway in gateways]
