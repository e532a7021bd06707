"""Stand-in lifecycle workflows under the real type names: the routes are tested for what
they start and signal, without deploying machines. They record what they received."""

from __future__ import annotations

import asyncio

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from activities.maas_session import MaasSessions
from activities.models import (
    CHECK_ACCOUNT,
    CheckAccountInput,
    CheckAccountResult,
)
from domain.lifecycle import CreateClusterInput, DeleteClusterInput
from domain.management import UpgradeAction
from domain.naming import (
    CREATE_WORKFLOW,
    DELETE_WORKFLOW,
    MANAGE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_COMMAND_RESULT,
    SIGNAL_STOP,
    UPDATE_CORDON,
    UPDATE_DRAIN,
    UPDATE_PAUSE,
    UPDATE_REPAVE,
    UPDATE_RESUME,
    UPDATE_SCALE,
    UPDATE_UNCORDON,
    UPDATE_UPGRADE,
)
from domain.phases import Reason
from tests.support.api_server import STANDIN_GATEWAY_KEYS
from workflows.contracts import (
    ActionAccepted,
    AgentReport,
    CommandResultSignal,
    NodeRequest,
    RepaveRequest,
    ScaleRequest,
    UpgradeRequest,
)
from workflows.plan import ClusterPlan
from workflows.validate import CloudAccountValidate


@workflow.defn(name=CREATE_WORKFLOW, sandboxed=False)
class CreateStandIn:
    def __init__(self) -> None:
        self.reports: list[AgentReport] = []

    @workflow.run
    async def run(self, inp: CreateClusterInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=SIGNAL_AGENT_REPORT)
    def agent_report(self, report: AgentReport) -> None:
        self.reports.append(report)

    @workflow.query(name=QUERY_STATE)
    def state(self) -> list[AgentReport]:
        return self.reports


@workflow.defn(name=DELETE_WORKFLOW, sandboxed=False)
class DeleteStandIn:
    @workflow.run
    async def run(self, inp: DeleteClusterInput) -> str:
        return inp.cluster.account.sealed_api_key


@workflow.defn(name=MANAGE_WORKFLOW, sandboxed=False)
class ManageStandIn:
    def __init__(self) -> None:
        self.reports: list[AgentReport] = []
        self.results: list[CommandResultSignal] = []
        self.pending: list[UpgradeAction] = []
        self.stopped = False
        self.paused = False

    @workflow.run
    async def run(self, cluster_id: str) -> None:
        await workflow.wait_condition(lambda: self.stopped)

    @workflow.signal(name=SIGNAL_AGENT_REPORT)
    def agent_report(self, report: AgentReport) -> None:
        self.reports.append(report)

    @workflow.signal(name=SIGNAL_COMMAND_RESULT)
    def command_result(self, result: CommandResultSignal) -> None:
        self.results.append(result)

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self) -> None:
        self.stopped = True

    @workflow.query(name=QUERY_STATE)
    def state(self) -> dict[str, object]:
        return {"reports": len(self.reports), "results": len(self.results), "pending": self.pending}

    @workflow.update(name=UPDATE_UPGRADE)
    def upgrade(self, req: UpgradeRequest) -> ActionAccepted:
        action_id = f"a{len(self.pending) + 1}"
        self.pending.append(UpgradeAction(id=action_id, kubernetes_version=req.kubernetes_version))
        return ActionAccepted(action_id=action_id, kind="upgrade", message=req.kubernetes_version)

    @upgrade.validator
    def _check_upgrade(self, req: UpgradeRequest) -> None:
        # Like the real workflow: refused while paused, one upgrade at a time.
        if self.paused:
            raise ApplicationError("management of this cluster is paused; resume it first")
        if self.pending:
            raise ApplicationError("an upgrade is already queued or running")

    @workflow.update(name=UPDATE_SCALE)
    def scale(self, req: ScaleRequest) -> ActionAccepted:
        return ActionAccepted(action_id="a2", kind="scale", message=f"{req.pool}={req.count}")

    @workflow.update(name=UPDATE_REPAVE)
    def repave(self, req: RepaveRequest) -> ActionAccepted:
        return ActionAccepted(action_id="a3", kind="repave", message=req.node or req.pool or "")

    def _node_action(self, kind: str, req: NodeRequest) -> ActionAccepted:
        if self.paused:
            raise ApplicationError(
                "management of this cluster is paused; resume it first",
                type=Reason.ACTION_REJECTED.value,
            )
        return ActionAccepted(action_id=f"{kind}-1", kind=kind, message=req.node)

    @workflow.update(name=UPDATE_CORDON)
    def cordon(self, req: NodeRequest) -> ActionAccepted:
        return self._node_action("cordon", req)

    @workflow.update(name=UPDATE_DRAIN)
    def drain(self, req: NodeRequest) -> ActionAccepted:
        return self._node_action("drain", req)

    @workflow.update(name=UPDATE_UNCORDON)
    def uncordon(self, req: NodeRequest) -> ActionAccepted:
        return self._node_action("uncordon", req)

    @workflow.update(name=UPDATE_PAUSE)
    def pause(self) -> ActionAccepted:
        self.paused = True
        return ActionAccepted(action_id="pause", kind="pause", message="management paused")

    @workflow.update(name=UPDATE_RESUME)
    def resume(self) -> ActionAccepted:
        self.paused = False
        return ActionAccepted(action_id="resume", kind="resume", message="management resumed")


@activity.defn(name=CHECK_ACCOUNT)
async def check_account_standin(inp: CheckAccountInput) -> CheckAccountResult:
    """Opens the sealed key as the real system gateway does, then judges it."""
    await asyncio.sleep(0)
    MaasSessions(keys=STANDIN_GATEWAY_KEYS).open_key(inp.account)
    if inp.account.api_key.startswith("bad"):
        raise ApplicationError(
            "401 Unauthorized", type=Reason.MAAS_AUTH_FAILED.value, non_retryable=True
        )
    return CheckAccountResult(
        maas_version="2.2.0",
        zones=["default"],
        resource_pools=["default"],
        tags=[],
        machines=3,
        ready_machines=3,
    )


# The real validation workflow runs with these: it only needs a gateway-side check.
STANDIN_WORKFLOWS = [
    CreateStandIn,
    DeleteStandIn,
    ManageStandIn,
    CloudAccountValidate,
    ClusterPlan,
]
