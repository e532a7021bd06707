"""Two tenants on one stack: through the front door, gateway B reaches nothing of A's, and
A's own gateway worker runs its activities as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueKind
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ListWorkflowExecutionsRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RecordActivityTaskHeartbeatRequest,
    RespondActivityTaskCompletedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.models import CHECK_ACCOUNT, CheckAccountInput, CheckAccountResult
from runtime.codec import gateway_key_spec
from tests.frontdoor.conftest import Stack, Tenant, gateway_client
from tests.gateway.activity_runner import run_activity
from tests.gateway.conftest import Maas
from tests.gateway.harness import RunActivity, RunActivityInput
from tests.support.api_server import ADMIN_KEY
from tests.support.temporal import assert_eventually, new_worker
from workers.gateway import run_gateway

HOLD = "test.hold"


async def refused(
    call: Awaitable[Any], status: RPCStatusCode = RPCStatusCode.PERMISSION_DENIED
) -> str:
    with pytest.raises(RPCError) as raised:
        await call
    assert raised.value.status == status, raised.value
    return raised.value.message


async def test_registration_hands_the_front_door_not_temporal(
    stack: Stack, tenant_a: Tenant, codec_keys: list[str]
) -> None:
    identity = tenant_a.identity
    assert identity.frontdoor_address == stack.settings.frontdoor_address
    assert identity.frontdoor_address != stack.settings.temporal_address
    assert "temporal_address" not in identity.model_dump()
    assert identity.frontdoor_ca_pem and "BEGIN CERTIFICATE" in identity.frontdoor_ca_pem
    # Its own codec key, derived for it: it opens no payload of another gateway's queue.
    assert identity.codec_keys == [gateway_key_spec(codec_keys[0], identity.gateway_id)]


async def test_gateway_b_reaches_nothing_of_gateway_a(
    client: Client, stack: Stack, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    a, b = tenant_a.identity, tenant_b.identity
    ns = client.namespace
    service = tenant_b.client.workflow_service
    handed: list[bytes] = []
    release = asyncio.Event()

    @activity.defn(name=HOLD)
    async def hold(arg: dict[str, Any]) -> dict[str, Any]:
        handed.append(activity.info().task_token)
        while not release.is_set():
            activity.heartbeat()
            await asyncio.sleep(0.1)
        return {"ran_on": "a"}

    async with (
        Worker(tenant_a.client, task_queue=a.task_queue, activities=[hold]),
        new_worker(client, RunActivity) as wf_worker,
    ):
        wf_id = f"tenant-a-{uuid.uuid4()}"
        handle = await client.start_workflow(
            RunActivity.run,
            RunActivityInput(
                activity=HOLD, arg={}, task_queue=a.task_queue, heartbeat_seconds=5, max_attempts=1
            ),
            id=wf_id,
            task_queue=wf_worker.task_queue,
        )

        async def got_token() -> None:
            assert handed, "gateway A's worker was handed the activity through the front door"

        await assert_eventually(got_token)
        execution = WorkflowExecution(workflow_id=wf_id)

        message = await refused(
            service.poll_activity_task_queue(
                PollActivityTaskQueueRequest(
                    namespace=ns, task_queue=TaskQueue(name=a.task_queue), identity="b"
                )
            )
        )
        assert a.task_queue in message and b.task_queue in message
        await refused(
            service.poll_workflow_task_queue(
                PollWorkflowTaskQueueRequest(
                    namespace=ns,
                    task_queue=TaskQueue(
                        name=wf_worker.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL
                    ),
                )
            )
        )
        await refused(
            service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(namespace=ns, execution=execution)
            )
        )
        await refused(service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)))
        await refused(
            service.signal_workflow_execution(
                SignalWorkflowExecutionRequest(
                    namespace=ns, workflow_execution=execution, signal_name="x"
                )
            )
        )
        await refused(
            service.start_workflow_execution(
                StartWorkflowExecutionRequest(
                    namespace=ns, workflow_id=f"b-{uuid.uuid4()}", request_id=str(uuid.uuid4())
                )
            )
        )
        await refused(
            service.terminate_workflow_execution(
                TerminateWorkflowExecutionRequest(namespace=ns, workflow_execution=execution)
            )
        )
        await refused(service.update_namespace(UpdateNamespaceRequest(namespace=ns)))
        # The SDK's own calls for B's queue are refused for A's queue, even the polite ones.
        message = await refused(
            service.respond_activity_task_completed(
                RespondActivityTaskCompletedRequest(namespace=ns, task_token=handed[0])
            )
        )
        assert "another gateway" in message
        await refused(
            service.record_activity_task_heartbeat(
                RecordActivityTaskHeartbeatRequest(namespace=ns, task_token=handed[0])
            )
        )
        # A forged token (an upstream token without the front door's MAC) is refused too.
        await refused(
            service.respond_activity_task_completed(
                RespondActivityTaskCompletedRequest(namespace=ns, task_token=handed[0][34:])
            )
        )
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING, "A is unaffected"
        release.set()
        outcome = await handle.result()
    assert outcome.result == {"ran_on": "a"}
    logged = await stack.http.get(
        "/v1/audit",
        params={"actor_id": b.gateway_id, "outcome": "refused", "limit": 500},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    actions = {e["action"] for e in logged.json()["items"]}
    assert {
        "grpc PollActivityTaskQueue",
        "grpc PollWorkflowTaskQueue",
        "grpc TerminateWorkflowExecution",
        "grpc RespondActivityTaskCompleted",
    } <= actions, "every refusal is in the audit log"


async def test_no_credential_or_a_wrong_one_is_unauthenticated(
    stack: Stack, tenant_a: Tenant
) -> None:
    wrong = tenant_a.identity.model_copy(update={"gateway_secret": "mgs_not-a-secret"})
    with pytest.raises(RuntimeError) as raised:
        await gateway_client(wrong)
    assert "unknown or revoked gateway secret" in str(raised.value)
    missing = grpc.aio.secure_channel(
        stack.settings.frontdoor_address,
        grpc.ssl_channel_credentials(tenant_a.identity.frontdoor_ca_pem.encode()),  # type: ignore[union-attr]
    )
    call: Callable[..., Awaitable[Any]] = missing.unary_unary(
        "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo",
        request_serializer=lambda m: m,
        response_deserializer=lambda m: m,
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await call(b"")
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await missing.close()


async def test_a_real_gateway_worker_runs_its_activities_through_the_front_door(
    client: Client, tenant_a: Tenant, maas: Maas
) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_gateway(tenant_a.client, tenant_a.identity.task_queue, stop, replica_id="a-1")
    )
    try:
        async with new_worker(client, RunActivity) as wf_worker:
            result = await run_activity(
                client,
                wf_worker.task_queue,
                CHECK_ACCOUNT,
                CheckAccountInput(account=maas.account),
                CheckAccountResult,
                activity_queue=tenant_a.identity.task_queue,
            )
        assert result.machines == 8
    finally:
        stop.set()
        await running
    assert not running.exception()
