"""Stand-in activities for workflow-logic tests, registered under the real activity names.

FakeMaas keeps an in-memory inventory with ownership marks, idempotent acquire by request,
quarantine on a failed deploy, and a gate that holds deployments for cancel/delete tests.
FakeControlPlane records every status write so tests can read phases like the store would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.models import (
    ACQUIRE_MACHINES,
    CHECK_ACCOUNT,
    CLUSTER_LEFTOVERS,
    DEPLOY_MACHINE,
    ENQUEUE_AGENT_COMMAND,
    ENSURE_ENDPOINT,
    FIND_OWNED,
    ISSUE_AGENT_TOKEN,
    PLAN_MACHINES,
    RECORD_STATUS,
    RELEASE_MACHINES,
    REMOVE_ENDPOINT,
    RENDER_CLOUD_INIT,
    REVOKE_AGENT_TOKEN,
    STOP_CLUSTER_WORKFLOWS,
    SWEEP_SILENT_AGENTS,
    WAIT_DEPLOYED,
    WAIT_RELEASED,
    AcquireMachinesInput,
    AcquireMachinesResult,
    AgentTokenResult,
    CheckAccountInput,
    CheckAccountResult,
    ClusterLeftoversInput,
    DeployMachineInput,
    DeployMachineResult,
    EnqueueAgentCommandInput,
    EnsureEndpointInput,
    EnsureEndpointResult,
    FindOwnedInput,
    FindOwnedResult,
    IssueAgentTokenInput,
    OwnedMachine,
    PlanMachinesInput,
    RecordStatusInput,
    ReleaseMachinesInput,
    ReleaseMachinesResult,
    RemoveEndpointInput,
    RemoveEndpointResult,
    RenderCloudInitInput,
    RenderCloudInitResult,
    RevokeAgentTokenInput,
    StopClusterWorkflowsInput,
    SweepSilentAgentsInput,
    SweepSilentAgentsResult,
    WaitDeployedInput,
    WaitDeployedResult,
    WaitReleasedInput,
    WaitReleasedResult,
)
from activities.remediation_models import (
    POWER_CYCLE_MACHINE,
    QUARANTINE_MACHINE,
    RELEASE_FOR_REDEPLOY,
    RemediateMachineInput,
    RemediateMachineResult,
)
from activities.zone_spread import ZoneSpread
from domain.agent_wire import NodeReport
from domain.capacity_plan import CapacityPlan, PoolPlan
from domain.cluster import ClusterSpec, EndpointMode, NodePool
from domain.leftovers import LeftBehind
from domain.lifecycle import (
    ClusterRef,
    CreateClusterInput,
    CreateClusterResult,
    GatewayRef,
    LifecycleTimeouts,
)
from domain.maas import MaasAccount, Machine
from domain.naming import (
    CREATE_WORKFLOW,
    QUARANTINE_TAG,
    SIGNAL_STOP,
    create_workflow_id,
    gateway_queue,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually, new_worker
from workers.gateway import HEARTBEAT_THROTTLE
from workflows.contracts import (
    AgentReport,
)
from workflows.registry import CONTROL_PLANE_WORKFLOWS

MAAS_API_KEY = "consumer-KEY:token-KEY:sEcReT-maas-api-key-do-not-leak"
BAD_API_KEY = "bad:bad:bad"

# Short but realistic: timers resolve to about a second on the dev server.
FAST = LifecycleTimeouts(
    gateway_probe=2.0,
    gateway_give_up=60.0,
    maas_call=10.0,
    deploy=30.0,
    deploy_poll_interval=0.2,
    agent_ready=20.0,
    max_deploy_replacements=2,
    command=20.0,
)


@dataclass
class FakeMachine:
    system_id: str
    hostname: str
    status: str = "Ready"
    tags: set[str] = field(default_factory=set)
    owner: str | None = None
    request: str | None = None
    pool: str = ""
    user_data: str = ""
    installation: str = ""
    zone: str = ""

    def machine(self) -> Machine:
        return Machine(
            system_id=self.system_id,
            hostname=self.hostname,
            pool=self.pool,
            request_id=self.request or "",
            status=self.status,
            ip_addresses=[f"10.0.0.{int(self.system_id[1:]) + 10}"],
            zone=self.zone,
        )


class FakeMaas:
    """An in-memory MAAS with the gateway activities' behaviour."""

    def __init__(
        self,
        machines: int = 6,
        *,
        fail_deploy: set[str] | None = None,
        release_seconds: float = 0.0,
        zones: dict[str, str] | None = None,
    ) -> None:
        self.machines = {
            f"m{i}": FakeMachine(
                system_id=f"m{i}", hostname=f"node-{i}", zone=(zones or {}).get(f"m{i}", "")
            )
            for i in range(machines)
        }
        self.fail_deploy = set(fail_deploy or ())
        # Cleared: deployments wait (heartbeating) until it is set.
        self.deploy_gate = asyncio.Event()
        self.deploy_gate.set()
        self.acquire_requests: list[str] = []
        self.deployed_user_data: dict[str, str] = {}
        self.deploy_inputs: list[DeployMachineInput] = []
        # cluster id -> (host, addresses) of the endpoint it holds
        self.endpoints: dict[str, tuple[str, list[str]]] = {}
        self.endpoint_calls: list[tuple[str, list[str]]] = []
        # > 0: a release leaves machines owned in "Disk erasing" this long, as MAAS does.
        self.release_seconds = release_seconds
        # MAAS activities in the order they ran ("<activity> <system id>" for deploys).
        self.calls: list[str] = []

    def activities(self) -> list[Any]:
        return [
            self.acquire_machines,
            self.deploy_machine,
            self.wait_deployed,
            self.release_machines,
            self.wait_released,
            self.find_owned,
            self.check_account,
            self.ensure_endpoint,
            self.remove_endpoint,
            self.power_cycle_machine,
            self.release_for_redeploy,
            self.quarantine_machine,
            self.plan_machines,
        ]

    def owned(self, cluster_id: str) -> list[FakeMachine]:
        return [m for m in self.machines.values() if m.owner == cluster_id]

    def free(self, pool: NodePool, exclude: list[str] | None = None) -> list[FakeMachine]:
        """Ready machines nobody owns that match the pool, as acquire would pick them."""
        return [
            m
            for m in self.machines.values()
            if m.status == "Ready"
            and m.owner is None
            and QUARANTINE_TAG not in m.tags
            and m.system_id not in (exclude or [])
            and set(pool.constraints.tags) <= m.tags
            and (not pool.constraints.zones or m.zone in pool.constraints.zones)
        ]

    @activity.defn(name=PLAN_MACHINES)
    async def plan_machines(self, inp: PlanMachinesInput) -> CapacityPlan:
        """Counts like acquire, takes nothing (the real one asks allocate with dry_run)."""
        self.calls.append(PLAN_MACHINES)
        plans = []
        for pool in inp.pools:
            free = self.free(pool)
            plans.append(
                PoolPlan(
                    pool=pool.name,
                    asked=pool.count,
                    satisfiable=len(free) >= pool.count,
                    matching=len(free),
                    summary=f"{pool.name}: {len(free)} free",
                )
            )
        return CapacityPlan(
            satisfiable=all(p.satisfiable for p in plans), pools=plans, summary="planned"
        )

    @activity.defn(name=ACQUIRE_MACHINES)
    async def acquire_machines(self, inp: AcquireMachinesInput) -> AcquireMachinesResult:
        self.acquire_requests.append(inp.request_id)
        self.calls.append(ACQUIRE_MACHINES)
        held = [
            m
            for m in self.machines.values()
            if m.owner == inp.cluster_id and m.request == inp.request_id
        ]
        if held:
            return AcquireMachinesResult(machines=[m.machine() for m in held])
        taken: set[str] = set()
        plan: list[tuple[NodePool, list[FakeMachine]]] = []
        notes: list[str] = []
        for pool in inp.pools:
            free = self.free(pool, [*inp.exclude_system_ids, *taken])
            # The real spread, on this inventory (activities.zone_spread).
            in_pool = [
                m.zone
                for m in self.owned(inp.cluster_id)
                if m.pool == pool.name and m.system_id not in inp.replacing
            ]
            spread = ZoneSpread(pool.constraints.zones, in_pool)
            free = spread.order(free, pool.count)
            if note := spread.note(pool.name):
                notes.append(note)
            if len(free) < pool.count:
                raise ApplicationError(
                    f"pool {pool.name} asks {pool.count} machines; MAAS has {len(free)} "
                    "Ready machines that match",
                    type=Reason.INSUFFICIENT_CAPACITY.value,
                    non_retryable=True,
                )
            chosen = free[: pool.count]
            taken.update(m.system_id for m in chosen)
            plan.append((pool, chosen))
        result: list[Machine] = []
        for pool, chosen in plan:
            for m in chosen:
                m.owner, m.request, m.pool, m.status = (
                    inp.cluster_id,
                    inp.request_id,
                    pool.name,
                    "Allocated",
                )
                m.installation = inp.installation_id
                result.append(m.machine())
        return AcquireMachinesResult(machines=result, notes=notes)

    @activity.defn(name=DEPLOY_MACHINE)
    async def deploy_machine(self, inp: DeployMachineInput) -> DeployMachineResult:
        machine = self.machines[inp.system_id]
        machine.status = "Deploying"
        self.deployed_user_data[inp.system_id] = inp.user_data
        self.deploy_inputs.append(inp)
        self.calls.append(f"{DEPLOY_MACHINE} {inp.system_id}")
        return DeployMachineResult(
            system_id=inp.system_id,
            status=machine.status,
            ip_addresses=machine.machine().ip_addresses,
        )

    @activity.defn(name=ENSURE_ENDPOINT)
    async def ensure_endpoint(self, inp: EnsureEndpointInput) -> EnsureEndpointResult:
        mode = inp.endpoint.mode
        if mode == EndpointMode.DNS:
            addresses = sorted(
                ip
                for m in self.owned(inp.cluster_id)
                if m.pool == inp.control_plane_pool
                and m.status in ("Deploying", "Deployed")
                and m.system_id not in inp.exclude_system_ids
                for ip in m.machine().ip_addresses
            )
            host = f"metalgate-{inp.cluster_id}.maas"
        else:
            known = self.endpoints.get(inp.cluster_id)
            host = inp.endpoint.address or (known[0] if known else f"10.0.9.{len(self.endpoints)}")
            addresses = [host]
        self.endpoint_calls.append((inp.cluster_id, addresses))
        self.calls.append(ENSURE_ENDPOINT)
        if mode != EndpointMode.EXTERNAL:
            self.endpoints[inp.cluster_id] = (host, addresses)
        return EnsureEndpointResult(mode=mode, host=host, addresses=addresses)

    @activity.defn(name=REMOVE_ENDPOINT)
    async def remove_endpoint(self, inp: RemoveEndpointInput) -> RemoveEndpointResult:
        gone = self.endpoints.pop(inp.cluster_id, None)
        self.calls.append(REMOVE_ENDPOINT)
        return RemoveEndpointResult(deleted_records=[gone[0]] if gone else [])

    @activity.defn(name=WAIT_DEPLOYED)
    async def wait_deployed(self, inp: WaitDeployedInput) -> WaitDeployedResult:
        machine = self.machines[inp.system_id]
        while not self.deploy_gate.is_set():
            activity.heartbeat("Deploying")
            await asyncio.sleep(0.2)
        if inp.system_id in self.fail_deploy:
            machine.status = "Failed deployment"
            machine.tags.add(QUARANTINE_TAG)
            raise ApplicationError(
                f"{machine.hostname} failed to deploy; quarantined",
                type=Reason.MACHINE_DEPLOY_FAILED.value,
                non_retryable=True,
            )
        machine.status = "Deployed"
        return WaitDeployedResult(machine=machine.machine())

    @activity.defn(name=POWER_CYCLE_MACHINE)
    async def power_cycle_machine(self, inp: RemediateMachineInput) -> RemediateMachineResult:
        self.calls.append(f"{POWER_CYCLE_MACHINE} {inp.system_id}")
        return RemediateMachineResult(system_id=inp.system_id, detail="powered off and on")

    @activity.defn(name=RELEASE_FOR_REDEPLOY)
    async def release_for_redeploy(self, inp: RemediateMachineInput) -> RemediateMachineResult:
        self.calls.append(f"{RELEASE_FOR_REDEPLOY} {inp.system_id}")
        self.machines[inp.system_id].status = "Allocated"
        return RemediateMachineResult(system_id=inp.system_id, detail="released and allocated back")

    @activity.defn(name=QUARANTINE_MACHINE)
    async def quarantine_machine(self, inp: RemediateMachineInput) -> RemediateMachineResult:
        self.calls.append(f"{QUARANTINE_MACHINE} {inp.system_id}")
        self.machines[inp.system_id].tags.add(QUARANTINE_TAG)
        return RemediateMachineResult(system_id=inp.system_id, detail="quarantined")

    @activity.defn(name=RELEASE_MACHINES)
    async def release_machines(self, inp: ReleaseMachinesInput) -> ReleaseMachinesResult:
        self.calls.append(RELEASE_MACHINES)
        result = ReleaseMachinesResult()
        for system_id in inp.system_ids:
            machine = self.machines[system_id]
            if machine.owner is None or machine.status == "Disk erasing":
                result.already_free.append(system_id)
                continue
            result.released.append(system_id)
            if self.release_seconds:
                machine.status = "Disk erasing"
                result.in_progress.append(system_id)
                asyncio.get_running_loop().call_later(self.release_seconds, self._free, machine)
            else:
                self._free(machine)
        return result

    @staticmethod
    def _free(machine: FakeMachine) -> None:
        machine.owner, machine.request, machine.pool, machine.status = None, None, "", "Ready"
        machine.installation = ""

    @activity.defn(name=WAIT_RELEASED)
    async def wait_released(self, inp: WaitReleasedInput) -> WaitReleasedResult:
        self.calls.append(WAIT_RELEASED)
        while any(m.status == "Disk erasing" for m in self.owned(inp.cluster_id)):
            activity.heartbeat()
            await asyncio.sleep(0.1)
        return WaitReleasedResult(stuck=[m.system_id for m in self.owned(inp.cluster_id)])

    @activity.defn(name=FIND_OWNED)
    async def find_owned(self, inp: FindOwnedInput) -> FindOwnedResult:
        self.calls.append(FIND_OWNED)
        return FindOwnedResult(
            machines=[
                OwnedMachine(
                    cluster_id=m.owner or "",
                    installation_id=m.installation,
                    **m.machine().model_dump(),
                )
                for m in self.machines.values()
                if m.owner is not None and (inp.cluster_id in (None, m.owner))
            ]
        )

    @activity.defn(name=CHECK_ACCOUNT)
    async def check_account(self, inp: CheckAccountInput) -> CheckAccountResult:
        if inp.account.api_key == BAD_API_KEY:
            raise ApplicationError(
                "MAAS answered 401", type=Reason.MAAS_AUTH_FAILED.value, non_retryable=True
            )
        return CheckAccountResult(
            maas_version="2.9.2",
            zones=["default"],
            resource_pools=["default"],
            tags=[],
            machines=len(self.machines),
            ready_machines=sum(m.status == "Ready" for m in self.machines.values()),
        )


class FakeControlPlane:
    """Control-plane activities that keep what they are told in memory."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.records: dict[str, list[RecordStatusInput]] = {}
        self.commands: list[EnqueueAgentCommandInput] = []
        self.revoked: list[str] = []
        self.rendered: list[RenderCloudInitInput] = []
        # What the store would list as held in MAAS, per cluster, for a force delete.
        self.left: dict[str, LeftBehind] = {}
        # Clusters whose delete was requested: the real token activity fences their create.
        self.delete_requested: set[str] = set()

    def activities(self) -> list[Any]:
        return [
            self.record_status,
            self.issue_agent_token,
            self.render_cloud_init,
            self.enqueue_agent_command,
            self.stop_cluster_workflows,
            self.revoke_agent_token,
            self.sweep_silent_agents,
            self.cluster_leftovers,
        ]

    def phases(self, cluster_id: str) -> list[Phase]:
        return [r.phase for r in self.records.get(cluster_id, [])]

    def last(self, cluster_id: str) -> RecordStatusInput | None:
        records = self.records.get(cluster_id)
        return records[-1] if records else None

    @activity.defn(name=RECORD_STATUS)
    async def record_status(self, inp: RecordStatusInput) -> None:
        self.records.setdefault(inp.cluster_id, []).append(inp)

    @activity.defn(name=ISSUE_AGENT_TOKEN)
    async def issue_agent_token(self, inp: IssueAgentTokenInput) -> AgentTokenResult:
        if inp.cluster_id in self.delete_requested:
            raise ApplicationError(
                "a delete was requested before the create began",
                type=Reason.CANCELLED.value,
                non_retryable=True,
            )
        return AgentTokenResult(token=agent_token(inp.cluster_id))

    @activity.defn(name=RENDER_CLOUD_INIT)
    async def render_cloud_init(self, inp: RenderCloudInitInput) -> RenderCloudInitResult:
        self.rendered.append(inp)
        return RenderCloudInitResult(
            user_data=f"#cloud-config\nmetalgate_token: {inp.agent_token}\nrole: {inp.role}\n"
        )

    @activity.defn(name=ENQUEUE_AGENT_COMMAND)
    async def enqueue_agent_command(self, inp: EnqueueAgentCommandInput) -> None:
        self.commands.append(inp)

    @activity.defn(name=STOP_CLUSTER_WORKFLOWS)
    async def stop_cluster_workflows(self, inp: StopClusterWorkflowsInput) -> None:
        create = self.client.get_workflow_handle(create_workflow_id(inp.cluster_id))
        manage = self.client.get_workflow_handle(manage_workflow_id(inp.cluster_id))
        if await is_running(create):
            await create.cancel()
        if await is_running(manage):
            await manage.signal(SIGNAL_STOP)
        while await is_running(create) or await is_running(manage):
            activity.heartbeat()
            await asyncio.sleep(0.2)

    @activity.defn(name=REVOKE_AGENT_TOKEN)
    async def revoke_agent_token(self, inp: RevokeAgentTokenInput) -> None:
        self.revoked.append(inp.cluster_id)

    @activity.defn(name=CLUSTER_LEFTOVERS)
    async def cluster_leftovers(self, inp: ClusterLeftoversInput) -> LeftBehind:
        return self.left.get(inp.cluster_id, LeftBehind())

    @activity.defn(name=SWEEP_SILENT_AGENTS)
    async def sweep_silent_agents(self, inp: SweepSilentAgentsInput) -> SweepSilentAgentsResult:
        return SweepSilentAgentsResult(signalled=[])


def agent_token(cluster_id: str) -> str:
    return f"agent-token-sEcReT-{cluster_id}"


async def is_running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


def ready_report(machines: list[Machine], version: str = "v1.30.4") -> AgentReport:
    return AgentReport(
        control_plane_ready=True,
        kubernetes_version=version,
        nodes=[
            NodeReport(
                hostname=m.hostname, system_id=m.system_id, ready=True, kubelet_version=version
            )
            for m in machines
        ],
    )


@dataclass
class Harness:
    client: Client
    maas: FakeMaas
    cp: FakeControlPlane
    gateway: GatewayRef
    task_queue: str

    def cluster(self, *, workers: int = 2, control_plane: int = 1) -> ClusterRef:
        cluster_id = f"c-{uuid.uuid4().hex[:10]}"
        return ClusterRef(
            cluster_id=cluster_id,
            project_id="p-test",
            spec=ClusterSpec(
                name=f"demo-{cluster_id[2:8]}",
                control_plane=NodePool(name="control-plane", count=control_plane),
                worker_pools=[NodePool(name="workers", count=workers)],
            ),
            gateway=self.gateway,
            account=MaasAccount(url="http://maas.invalid:5240/MAAS/", api_key=MAAS_API_KEY),
        )

    def gateway_worker(self) -> Worker:
        # Heartbeats flushed often, as the real gateway worker does (HEARTBEAT_THROTTLE):
        # with the SDK's default a loaded machine misses heartbeat timeouts.
        return new_worker(
            self.client,
            activities=self.maas.activities(),
            task_queue=gateway_queue(self.gateway.id),
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        )

    async def start_create(
        self, cluster: ClusterRef, timeouts: LifecycleTimeouts = FAST
    ) -> WorkflowHandle[Any, CreateClusterResult]:
        return await self.client.start_workflow(
            CREATE_WORKFLOW,
            CreateClusterInput(cluster=cluster, timeouts=timeouts),
            id=create_workflow_id(cluster.cluster_id),
            task_queue=self.task_queue,
            result_type=CreateClusterResult,
        )

    async def wait_phase(self, cluster_id: str, phase: Phase, within: float = 20.0) -> None:
        async def check() -> None:
            assert phase in self.cp.phases(cluster_id), self.cp.phases(cluster_id)

        await assert_eventually(check, within=within)

    async def wait_reason(self, cluster_id: str, reason: Reason, within: float = 20.0) -> None:
        async def check() -> None:
            reasons = [r.reason for r in self.cp.records.get(cluster_id, [])]
            assert reason in reasons, reasons

        await assert_eventually(check, within=within)

    async def stop_management(self, cluster_id: str) -> None:
        handle = self.client.get_workflow_handle(manage_workflow_id(cluster_id))
        if await is_running(handle):
            await handle.signal(SIGNAL_STOP)
            await handle.result()


@asynccontextmanager
async def harness(
    client: Client, *, machines: int = 6, gateway_up: bool = True, **maas: Any
) -> AsyncIterator[Harness]:
    """Workflows and fake control-plane activities on a private queue, fake MAAS on a gateway's."""
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    h = Harness(
        client=client,
        maas=FakeMaas(machines, **maas),
        cp=FakeControlPlane(client),
        gateway=GatewayRef(id=gateway_id, name=f"pcg-{gateway_id[3:]}"),
        task_queue=f"cp-{uuid.uuid4()}",
    )
    async with new_worker(
        client, *CONTROL_PLANE_WORKFLOWS, activities=h.cp.activities(), task_queue=h.task_queue
    ):
        if gateway_up:
            async with h.gateway_worker():
                yield h
        else:
            yield h
