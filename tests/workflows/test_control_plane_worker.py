"""The control-plane worker's fleet schedule and the sweep workflow it starts."""

from __future__ import annotations

import uuid

from temporalio.client import Client, ScheduleActionStartWorkflow

from activities.models import SweepSilentAgentsResult
from domain.naming import SILENCE_SWEEP_SCHEDULE_ID, SILENCE_SWEEP_WORKFLOW
from runtime.schedules import ensure_silence_sweep_schedule
from tests.workflows.fakes import harness
from workflows.contracts import SilenceSweepInput


async def test_silence_sweep_schedule_is_created_once_and_follows_the_settings(
    client: Client,
) -> None:
    await ensure_silence_sweep_schedule(client, silence_seconds=120, node_silence_seconds=120)
    await ensure_silence_sweep_schedule(client, silence_seconds=120, node_silence_seconds=120)
    handle = client.get_schedule_handle(SILENCE_SWEEP_SCHEDULE_ID)
    try:
        description = await handle.describe()
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == SILENCE_SWEEP_WORKFLOW
        interval = description.schedule.spec.intervals[0].every
        assert interval.total_seconds() == 30
        # A shorter node silence (the default 30 s) sweeps a few times within it.
        await ensure_silence_sweep_schedule(client, silence_seconds=120)
        interval = (await handle.describe()).schedule.spec.intervals[0].every
        assert interval.total_seconds() == 7.5
    finally:
        await handle.delete()


async def test_sweep_workflow_runs_the_sweep_activity(client: Client) -> None:
    async with harness(client) as h:
        result = await client.execute_workflow(
            SILENCE_SWEEP_WORKFLOW,
            SilenceSweepInput(silence_seconds=60),
            id=f"sweep-{uuid.uuid4()}",
            task_queue=h.task_queue,
            result_type=SweepSilentAgentsResult,
        )
    assert result.signalled == []
