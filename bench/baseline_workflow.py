"""The bare-Temporal stand-in for a cluster create: the same activity stages, doing nothing.

A stage is a set of activities one workflow task schedules together (the create deploys its
machines in parallel), so the baseline loads the server exactly as the real saga's shape does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

NOOP_ACTIVITY = "bench.noop"
BASELINE_WORKFLOW = "BenchBaseline"


@dataclass
class Stage:
    queue: str
    count: int = 1


@dataclass
class BaselineInput:
    stages: list[Stage] = field(default_factory=list)


@activity.defn(name=NOOP_ACTIVITY)
async def noop() -> None:
    """Returns at once: the baseline measures the engine, not the work."""


@workflow.defn(name=BASELINE_WORKFLOW)
class BaselineWorkflow:
    @workflow.run
    async def run(self, params: BaselineInput) -> int:
        done = 0
        for stage in params.stages:
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        NOOP_ACTIVITY,
                        task_queue=stage.queue,
                        start_to_close_timeout=timedelta(seconds=60),
                    )
                    for _ in range(stage.count)
                )
            )
            done += stage.count
        return done
