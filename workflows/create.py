"""The cluster create saga: ordered gates from Pending to Running, compensated on any failure.

Outcome contract: a failure ends the workflow *successfully* with
`CreateClusterResult(phase=Failed, reason=...)` after every machine is released, because the
failure is the cluster's, not the workflow's (the API reads the phase from the store). A
cancellation (delete, or an operator) compensates the same way, records Failed/Cancelled,
then re-raises so Temporal shows the run as Canceled and whoever cancelled can wait for it.
Bugs in this code (a non-Temporal exception) still fail the workflow task and retry, so a
fix can be deployed without losing the saga.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        ISSUE_AGENT_TOKEN,
        AgentTokenResult,
        IssueAgentTokenInput,
    )
    from domain.lifecycle import CreateClusterInput, CreateClusterResult, cluster_search_attributes
    from domain.maas import Machine
    from domain.naming import (
        CREATE_WORKFLOW,
        MANAGE_WORKFLOW,
        SIGNAL_AGENT_REPORT,
        manage_workflow_id,
    )
    from domain.phases import Phase, Reason
    from workflows.contracts import AgentReport, ManageInput, ManageState
    from workflows.deploy import Deployer
    from workflows.endpoint import ENDPOINT_PATCH, Endpoint
    from workflows.gateway_calls import GatewayCalls, failure_reason
    from workflows.status import (
        StatusRecorder,
        annotate,
        cancel_requested,
        close_search_attributes,
        control_plane_call,
        run_to_completion,
    )
    from workflows.surplus import PATCH_RELEASE_SURPLUS, release_surplus

CREATE_REQUEST_ID = "create"
# Compensate after a gateway wait too when an acquire was scheduled: an attempt may have
# allocated before the gateway went away.
PATCH_COMPENSATE_AFTER_GATEWAY_WAIT = "compensate-after-gateway-wait"
# Histories recorded before a cancelled create skipped the gateway when it never asked it.
PATCH_CANCELLED_BEFORE_ACQUIRE = "cancelled-before-acquire"
# Histories recorded before a cancel hidden behind an activity failure still ended cancelled.
PATCH_CANCEL_WINS = "cancel-wins"


@workflow.defn(name=CREATE_WORKFLOW)
class ClusterCreate:
    def __init__(self) -> None:
        self._report: AgentReport | None = None
        self._held: dict[str, Machine] = {}
        self._acquire_scheduled = False

    @workflow.signal(name=SIGNAL_AGENT_REPORT)
    def agent_report(self, report: AgentReport) -> None:
        # Nodes report concurrently and each API request aggregates what it saw, so the last
        # signal may lack a node an earlier one had: keep every node's latest status.
        if self._report is not None:
            nodes = {n.hostname: n for n in [*self._report.nodes, *report.nodes]}
            report = report.model_copy(
                update={"nodes": sorted(nodes.values(), key=lambda n: n.hostname)}
            )
        self._report = report

    @workflow.run
    async def run(self, input: CreateClusterInput) -> CreateClusterResult:
        cluster = input.cluster
        self._status = StatusRecorder(cluster.cluster_id, Phase.PENDING)
        self._calls = GatewayCalls(cluster.gateway, input.timeouts, self._status)
        self._agent_ready = input.timeouts.agent_ready
        self._endpoint = (
            Endpoint(cluster, self._calls) if workflow.patched(ENDPOINT_PATCH) else None
        )
        annotate(cluster, Phase.PENDING)
        try:
            return await self._create(input)
        except (asyncio.CancelledError, FailureError) as err:
            # A cancel surfaces as asyncio's CancelledError or, when an activity's cancel
            # lands first, as an ActivityError caused by one, or behind another activity's
            # failure: the workflow still ends cancelled, so whoever cancelled sees it.
            cancelled = is_cancelled_exception(err)
            hidden = not cancelled and cancel_requested() and workflow.patched(PATCH_CANCEL_WINS)
            if cancelled or hidden:
                await run_to_completion(
                    self._fail(input, Reason.CANCELLED, "the create was cancelled")
                )
                if hidden:
                    raise asyncio.CancelledError("the create was cancelled") from err
                raise
            reason, message = failure_reason(err)
            return await run_to_completion(self._fail(input, reason, message))

    async def _create(self, input: CreateClusterInput) -> CreateClusterResult:
        cluster, spec, timeouts = input.cluster, input.cluster.spec, input.timeouts
        await self._status.set(
            Phase.PENDING,
            event=f"create started: {spec.node_count} nodes, Kubernetes {spec.kubernetes_version}",
        )
        token = await self._control_plane_token(cluster.cluster_id)

        await self._status.set(
            Phase.ACQUIRING_MACHINES,
            event=f"acquiring {spec.node_count} machines through gateway {cluster.gateway.name}",
        )
        self._acquire_scheduled = True
        acquired = await self._calls.acquire(
            cluster, CREATE_REQUEST_ID, [p for p in spec.pools if p.count > 0]
        )
        self._held.update({m.system_id: m for m in acquired.machines})
        if workflow.patched(PATCH_RELEASE_SURPLUS):
            await release_surplus(self._calls, cluster, set(self._held))
        host = await self._endpoint.ensure() if self._endpoint else ""

        await self._status.set(
            Phase.DEPLOYING_OS,
            reason=Reason.WAITING_FOR_DEPLOYMENT,
            message=f"deploying {spec.distro_series} on {len(self._held)} machines",
            machines=list(self._held.values()),
            event="acquired " + ", ".join(m.hostname for m in acquired.machines),
        )
        first_cp = next(m for m in acquired.machines if m.pool == spec.control_plane.name)
        deployer = Deployer(
            cluster,
            self._calls,
            agent_token=token,
            kubernetes_version=spec.kubernetes_version,
            held=self._held,
            control_plane_host=host,
            endpoint=self._endpoint,
        )
        machines = await deployer.deploy_all(
            acquired.machines, first_control_plane=first_cp.system_id
        )
        if self._endpoint:
            await self._endpoint.control_plane_changed()  # the final set, replacements included

        agent_deadline = workflow.time() + timeouts.agent_ready
        await self._status.set(
            Phase.BOOTSTRAPPING_CONTROL_PLANE,
            reason=Reason.WAITING_FOR_AGENT,
            message="waiting for the agent to report the control plane ready",
            machines=machines,
            event=f"all {len(machines)} machines deployed",
        )
        await self._wait_for_agent(
            "the control plane ready",
            lambda: self._report is not None and self._report.control_plane_ready,
            agent_deadline,
            machines,
        )
        await self._status.set(
            Phase.JOINING_NODES,
            reason=Reason.WAITING_FOR_AGENT,
            message="waiting for every node to be ready",
            event="control plane ready",
        )
        await self._wait_for_agent(
            "every node ready", lambda: not self._unready(machines), agent_deadline, machines
        )

        assert self._report is not None
        version = self._report.kubernetes_version or spec.kubernetes_version
        await self._status.set(
            Phase.RUNNING,
            machines=machines,
            kubernetes_version=version,
            event=f"cluster running: {len(machines)} nodes ready, Kubernetes {version}",
        )
        await self._start_management(input, token, machines, version)
        close_search_attributes(None)  # the management workflow carries the phase on
        return CreateClusterResult(phase=Phase.RUNNING, machines=machines)

    async def _control_plane_token(self, cluster_id: str) -> str:
        result = await control_plane_call(
            ISSUE_AGENT_TOKEN, IssueAgentTokenInput(cluster_id=cluster_id), AgentTokenResult
        )
        return result.token

    def _unready(self, machines: list[Machine]) -> list[str]:
        ready: set[str] = set()
        for node in self._report.nodes if self._report else []:
            if node.ready:
                ready.update({node.hostname, node.system_id} - {""})
        return [
            m.hostname for m in machines if m.system_id not in ready and m.hostname not in ready
        ]

    async def _wait_for_agent(
        self, what: str, condition: Callable[[], bool], deadline: float, machines: list[Machine]
    ) -> None:
        remaining = deadline - workflow.time()
        if remaining > 0:
            try:
                await workflow.wait_condition(condition, timeout=timedelta(seconds=remaining))
            except TimeoutError:
                pass
        if not condition():
            unready = self._unready(machines)
            raise ApplicationError(
                f"the cluster agent did not report {what} within "
                f"{self._agent_ready:.0f}s; {len(machines) - len(unready)}/"
                f"{len(machines)} nodes ready (not ready: {', '.join(unready) or 'none'})",
                type=Reason.AGENT_TIMEOUT.value,
                non_retryable=True,
            ) from None

    async def _start_management(
        self, input: CreateClusterInput, token: str, machines: list[Machine], version: str
    ) -> None:
        cluster = input.cluster
        state = ManageState(
            cluster=cluster,
            agent_token=token,
            machines=machines,
            kubernetes_version=version,
            nodes=self._report.nodes if self._report else [],
            last_report_unix=workflow.time(),
            timeouts=input.timeouts,
            silence_seconds=input.silence_seconds,
            control_plane_host=self._endpoint.host if self._endpoint else "",
        )
        try:
            await workflow.start_child_workflow(
                MANAGE_WORKFLOW,
                ManageInput(state=state),
                id=manage_workflow_id(cluster.cluster_id),
                # The queue this saga runs on: CONTROL_PLANE_QUEUE in production.
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=cluster_search_attributes(cluster, Phase.RUNNING),
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("management of %s already runs", cluster.cluster_id)

    async def _fail(
        self, input: CreateClusterInput, reason: Reason, message: str
    ) -> CreateClusterResult:
        workflow.logger.warning(
            "cluster %s failed: %s: %s", input.cluster.cluster_id, reason, message
        )
        try:
            released = await self._compensate(input, reason)
            if self._endpoint and (self._held or released or self._endpoint.host):
                await self._endpoint.remove()
        except FailureError as err:
            # The orphan sweep and a delete find these by ownership later.
            _, why = failure_reason(err)
            message = f"{message}; releasing machines failed ({why}), delete the cluster to retry"
            await self._status.set(
                Phase.FAILED,
                reason=reason,
                message=message,
                machines=list(self._held.values()),
                event=f"create failed ({reason}): {message}",
            )
            return CreateClusterResult(
                phase=Phase.FAILED,
                reason=reason,
                message=message,
                machines=list(self._held.values()),
            )
        await self._status.set(
            Phase.FAILED,
            reason=reason,
            message=message,
            machines=[],
            event=f"create failed ({reason}): {message}; released {len(released)} machines",
        )
        return CreateClusterResult(phase=Phase.FAILED, reason=reason, message=message)

    async def _compensate(self, input: CreateClusterInput, reason: Reason) -> list[str]:
        """Release what this saga holds plus whatever MAAS says the cluster owns."""
        cluster = input.cluster
        if (
            reason == Reason.CANCELLED
            and not self._acquire_scheduled
            and workflow.patched(PATCH_CANCELLED_BEFORE_ACQUIRE)
        ):
            # Only a delete cancels a create (or fences one that starts after it), and the
            # delete releases by ownership whatever an earlier run left: a create that never
            # asked the gateway has nothing to give back and must not wait for it.
            return []
        if reason == Reason.GATEWAY_UNAVAILABLE and not self._held:
            # Nothing ran on the gateway unless an acquire was scheduled: one of its attempts
            # may have allocated before the gateway went away, so then wait for it again.
            if not (
                self._acquire_scheduled and workflow.patched(PATCH_COMPENSATE_AFTER_GATEWAY_WAIT)
            ):
                return []
        owned = await self._calls.find_owned(cluster)
        system_ids = sorted(set(self._held) | {m.system_id for m in owned.machines})
        if not system_ids:
            return []
        await self._calls.release(
            cluster, system_ids, f"metalgate: create of cluster {cluster.cluster_id} failed"
        )
        self._held.clear()
        return system_ids
