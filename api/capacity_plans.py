"""Plans before acting: the API asks the cluster's gateway (through the ClusterPlan workflow)
what MAAS would hand a set of pools, and answers at once; nothing is stored or taken."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from fastapi import HTTPException, Request
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from api.temporal_gate import bounded
from api.workflow_errors import TIMEOUT, named_failure
from domain.capacity_plan import CapacityPlan
from domain.cluster import NodePool
from domain.lifecycle import GatewayRef
from domain.maas import MaasAccount
from domain.naming import CONTROL_PLANE_QUEUE, PLAN_WORKFLOW, plan_workflow_id
from domain.phases import Reason
from workflows.contracts import PlanClusterInput

log = logging.getLogger(__name__)


def gateway_offline(name: str) -> HTTPException:
    return HTTPException(
        503,
        f"gateway {name} is offline, so MAAS cannot be asked: start it with "
        "`metalgate gateway run` on its host (or `metalgate up` for the system gateway), "
        "then retry",
    )


async def plan_pools(
    request: Request,
    client: Client,
    project_id: str,
    account: MaasAccount,
    gateway: GatewayRef,
    pools: list[NodePool],
    cluster_id: str | None = None,
) -> CapacityPlan:
    """What MAAS would hand `pools` (each count = machines needed), within the API's wait;
    with `cluster_id` (a scale-up) the zone spread counts the cluster's machines."""
    wait: float = request.app.state.account_validation_seconds
    handle: WorkflowHandle[Any, CapacityPlan] = await bounded(
        client.start_workflow(
            PLAN_WORKFLOW,
            PlanClusterInput(
                account=account,
                gateway=gateway,
                pools=pools,
                wait_seconds=wait,
                cluster_id=cluster_id,
            ),
            id=plan_workflow_id(project_id, uuid.uuid4().hex),
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=CapacityPlan,
            execution_timeout=timedelta(seconds=wait + 30),
        )
    )
    try:
        return await asyncio.wait_for(handle.result(), wait + 5)
    except TimeoutError as exc:
        await _terminate_quietly(handle)
        raise gateway_offline(gateway.name) from exc
    except WorkflowFailureError as exc:
        kind, message = named_failure(exc)
        if kind in (TIMEOUT, Reason.GATEWAY_UNAVAILABLE.value):
            raise gateway_offline(gateway.name) from exc
        log.warning("plan through gateway %s failed: %s", gateway.name, message)
        raise HTTPException(503, f"the plan could not be made: {message}") from exc


async def _terminate_quietly(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        await handle.terminate("the API stopped waiting for the plan")
    except RPCError:
        log.debug("plan workflow %s already closed", handle.id)
