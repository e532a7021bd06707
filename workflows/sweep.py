"""Fleet-wide agent silence detection: one scheduled sweep, not one timer per cluster."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        SWEEP_SILENT_AGENTS,
        SweepSilentAgentsInput,
        SweepSilentAgentsResult,
    )
    from domain.naming import SILENCE_SWEEP_WORKFLOW
    from workflows.contracts import SilenceSweepInput
    from workflows.status import control_plane_call

# The schedule starts the next sweep soon anyway; retrying one for long only piles them up.
SWEEP_RETRY = RetryPolicy(maximum_attempts=3)


@workflow.defn(name=SILENCE_SWEEP_WORKFLOW)
class AgentSilenceSweep:
    @workflow.run
    async def run(self, input: SilenceSweepInput) -> SweepSilentAgentsResult:
        result = await control_plane_call(
            SWEEP_SILENT_AGENTS,
            SweepSilentAgentsInput(
                silence_seconds=input.silence_seconds,
                node_silence_seconds=input.node_silence_seconds,
            ),
            SweepSilentAgentsResult,
            start_to_close=120.0,
            retry=SWEEP_RETRY,
        )
        if result.signalled:
            workflow.logger.info("agents silent: %s", ", ".join(result.signalled))
        if result.silent_nodes:
            workflow.logger.info("nodes silent: %s", ", ".join(result.silent_nodes))
        return result
