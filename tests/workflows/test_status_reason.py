"""ClusterReason carries why a cluster waits or failed, and clears when nothing is wrong."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.models import RECORD_STATUS, RecordStatusInput
from domain.naming import SA_CLUSTER_PHASE, SA_CLUSTER_REASON
from domain.phases import Phase, Reason
from workflows.status import StatusRecorder


@activity.defn(name=RECORD_STATUS)
async def record_status(_: RecordStatusInput) -> None:
    """Stands in for the store write."""


@workflow.defn(sandboxed=False)
class RecordsAReason:
    def __init__(self) -> None:
        self.step = 0

    @workflow.run
    async def run(self) -> None:
        recorder = StatusRecorder("c-1", Phase.PENDING)
        await recorder.waiting_for_gateway("pcg-a")
        self.step = 1
        await workflow.wait_condition(lambda: self.step == 2)
        await recorder.set(Phase.RUNNING)
        self.step = 3
        await workflow.wait_condition(lambda: self.step == 4)

    @workflow.signal
    def next(self) -> None:
        self.step += 1

    @workflow.query
    def at(self) -> int:
        return self.step


async def search_attributes(client: Client, workflow_id: str) -> dict[str, str | None]:
    described = await client.get_workflow_handle(workflow_id).describe()
    attrs = described.typed_search_attributes
    return {"phase": attrs.get(SA_CLUSTER_PHASE), "reason": attrs.get(SA_CLUSTER_REASON)}


async def until_step(client: Client, workflow_id: str, step: int) -> None:
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(100):
        if await handle.query(RecordsAReason.at) == step:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"workflow never reached step {step}")


async def test_cluster_reason_search_attribute(env: WorkflowEnvironment) -> None:
    queue = f"reason-{uuid.uuid4()}"
    workflow_id = f"reason-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[RecordsAReason], activities=[record_status]
    ):
        handle = await env.client.start_workflow(
            RecordsAReason.run, id=workflow_id, task_queue=queue
        )
        await until_step(env.client, workflow_id, 1)
        assert await search_attributes(env.client, workflow_id) == {
            "phase": Phase.PENDING.value,
            "reason": Reason.WAITING_FOR_GATEWAY.value,
        }
        await handle.signal(RecordsAReason.next)
        await until_step(env.client, workflow_id, 3)
        assert await search_attributes(env.client, workflow_id) == {
            "phase": Phase.RUNNING.value,
            "reason": None,
        }
        await handle.signal(RecordsAReason.next)
        await handle.result()
