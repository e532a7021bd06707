"""What a stuck cluster's workflows were doing when the chaos run gave up on it.

A problem line that says only "still Deleting" sends the reader to a UI that is gone with
the run's temporary directory; this puts the open workflows' pending activities and their
last events into the run's output instead.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from domain.naming import create_workflow_id, delete_workflow_id, manage_workflow_id

LAST_EVENTS = 12


async def diagnose(client: Client, cluster_id: str) -> list[str]:
    lines: list[str] = []
    for workflow_id in (
        create_workflow_id(cluster_id),
        manage_workflow_id(cluster_id),
        delete_workflow_id(cluster_id),
    ):
        handle = client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe()
        except RPCError as err:
            lines.append(f"{workflow_id}: {err.message}")
            continue
        status = described.status.name if described.status else "?"
        lines.append(f"{workflow_id}: {status}")
        for pending in described.raw_description.pending_activities:
            failure = pending.last_failure.message if pending.HasField("last_failure") else ""
            lines.append(
                f"  pending {pending.activity_type.name}: state "
                f"{pending.state}, attempt {pending.attempt}, worker "
                f"{pending.last_worker_identity or '-'}, last failure {failure or '-'}"
            )
        events = [event async for event in handle.fetch_history_events()]
        for event in events[-LAST_EVENTS:]:
            lines.append(f"  {event.event_id} {EventType.Name(event.event_type)}")
    return lines
