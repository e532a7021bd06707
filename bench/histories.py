"""What Temporal histories say about a workflow: its activities, tasks, events and stage shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from bench.baseline import format_shape
from domain.naming import CONTROL_PLANE_QUEUE


@dataclass
class HistoryCounts:
    events: int = 0
    activities: int = 0
    workflow_tasks: int = 0
    signals: int = 0
    # Activities scheduled by one workflow task run in parallel: ("cp" | "gw", count) per task.
    stages: list[tuple[str, int]] = field(default_factory=list)


async def history_counts(client: Client, workflow_id: str) -> HistoryCounts | None:
    """Counts of the latest run of `workflow_id`; None when it never existed."""
    try:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError:
        return None
    counts = HistoryCounts(events=len(history.events))
    by_task: dict[int, list[str]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts.activities += 1
            attrs = event.activity_task_scheduled_event_attributes
            role = "cp" if attrs.task_queue.name == CONTROL_PLANE_QUEUE else "gw"
            by_task.setdefault(attrs.workflow_task_completed_event_id, []).append(role)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            counts.workflow_tasks += 1
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            counts.signals += 1
    for task in sorted(by_task):
        for role in ("cp", "gw"):
            count = by_task[task].count(role)
            if count:
                counts.stages.append((role, count))
    return counts


def mean_counts(samples: list[HistoryCounts]) -> dict[str, float]:
    if not samples:
        return {"events": 0.0, "activities": 0.0, "workflow_tasks": 0.0, "signals": 0.0}
    n = len(samples)
    return {
        "events": round(sum(s.events for s in samples) / n, 1),
        "activities": round(sum(s.activities for s in samples) / n, 1),
        "workflow_tasks": round(sum(s.workflow_tasks for s in samples) / n, 1),
        "signals": round(sum(s.signals for s in samples) / n, 1),
    }


def typical_shape(samples: list[HistoryCounts]) -> str | None:
    """The most common stage shape among the samples, in the baseline's notation."""
    shapes = [format_shape(s.stages) for s in samples if s.stages]
    return max(set(shapes), key=shapes.count) if shapes else None
