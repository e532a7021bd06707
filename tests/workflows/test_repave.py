"""Rolling repave in the management workflow, on the real dev server with fake MAAS.

A stand-in agent joins every machine MAAS deploys for the cluster and answers the agent
commands; at each node taken out it records what was up then, so the tests check quorum,
surge, unavailability and the endpoint record at the moments that matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities.models import ACQUIRE_MACHINES, PLAN_MACHINES, AcquireMachinesInput
from activities.remediation_models import RELEASE_FOR_REDEPLOY
from domain.agent_wire import RUNNER_ARG, ActionKind, NodeReport, NodeRole
from domain.cluster import ControlPlaneEndpoint, EndpointMode, NodePool, RepavePolicy
from domain.lifecycle import LifecycleTimeouts
from domain.maas import Machine
from domain.naming import (
    MANAGE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_AGENT_REPORT,
    SIGNAL_COMMAND_RESULT,
    UPDATE_REPAVE,
    manage_workflow_id,
)
from domain.phases import Phase, Reason
from tests.support.temporal import assert_eventually
from tests.workflows.fakes import FAST, FakeMachine, Harness, agent_token, harness
from tests.workflows.test_manage import rejected, update
from workflows.contracts import (
    AgentReport,
    CommandResultSignal,
    ManageInput,
    ManageState,
    RepaveRequest,
)

CP = "control-plane"
# Released machines stay in "Disk erasing" past each test, so every fresh machine is new.
ERASING = 600.0


@dataclass
class TakenOut:
    """What was up when the agent was asked to take `node` out."""

    node: str
    pool: str
    others_up: int
    owned: int
    endpoint: list[str]
    runner: str  # the control-plane node whose agent was to run it


@dataclass
class StandInAgent:
    """Plays the cluster's agents: a machine joins once MAAS deployed it, commands succeed
    (or fail for the nodes in `fail_take_out`), and machines that leave MAAS leave the
    cluster. Nodes in `never_join` never report Ready."""

    h: Harness
    handle: WorkflowHandle[Any, Any]
    cluster_id: str
    up: dict[str, Machine] = field(default_factory=dict)
    fail_take_out: set[str] = field(default_factory=set)
    never_join: set[str] = field(default_factory=set)
    taken_out: list[TakenOut] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)
    max_owned: int = 0
    _deploys: dict[str, int] = field(default_factory=dict)
    _answered: set[str] = field(default_factory=set)

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(0.05)

    def held(self) -> dict[str, FakeMachine]:
        """The cluster's machines in MAAS, not counting those released and erasing."""
        owned = self.h.maas.owned(self.cluster_id)
        return {m.system_id: m for m in owned if m.status != "Disk erasing"}

    async def step(self) -> None:
        owned = self.held()
        self.max_owned = max(self.max_owned, len(owned))
        self.up = {n: m for n, m in self.up.items() if m.system_id in owned}
        joined = False
        for machine in owned.values():
            deploys = sum(1 for d in self.h.maas.deploy_inputs if d.system_id == machine.system_id)
            if machine.status != "Deployed" or deploys <= self._deploys.get(machine.system_id, 0):
                continue
            self._deploys[machine.system_id] = deploys
            if machine.hostname not in self.never_join:
                self.up[machine.hostname] = machine.machine()
                joined = True
        if joined:
            await self.report()
        for command in list(self.h.cp.commands):
            if command.command_id not in self._answered:
                self._answered.add(command.command_id)
                await self.answer(command.command_id, ActionKind(command.kind), command.args)

    async def report(self) -> None:
        nodes = [
            NodeReport(
                hostname=m.hostname,
                system_id=m.system_id,
                role=NodeRole.CONTROL_PLANE if m.pool == CP else NodeRole.WORKER,
                ready=True,
                kubelet_version="v1.30.4",
            )
            for m in self.up.values()
        ]
        report = AgentReport(control_plane_ready=True, kubernetes_version="v1.30.4", nodes=nodes)
        await self.handle.signal(SIGNAL_AGENT_REPORT, report)

    async def answer(self, command_id: str, kind: ActionKind, args: dict[str, str]) -> None:
        node = args["node"]
        self.commands.append((kind, node))
        state, message = "succeeded", ""
        if kind == ActionKind.REPAVE:
            leaving = self.up.get(node)
            pool = leaving.pool if leaving else ""
            endpoint = self.h.maas.endpoints.get(self.cluster_id, ("", []))[1]
            others = [m for n, m in self.up.items() if n != node and m.pool == pool]
            runner = args.get(RUNNER_ARG, "")
            self.taken_out.append(
                TakenOut(node, pool, len(others), len(self.held()), endpoint, runner)
            )
            runs = self.up.get(runner)
            if runs is None or runs.pool != CP or runner == node:
                # Only another control plane that is up can remove the node's etcd member.
                state, message = "failed", f"no agent on a staying control plane {runner!r}"
            elif node in self.fail_take_out:
                state, message = "failed", "PodDisruptionBudget web-pdb: needs 2 healthy pods"
            else:
                self.up.pop(node, None)
        await self.handle.signal(
            SIGNAL_COMMAND_RESULT,
            CommandResultSignal(command_id=command_id, state=state, node=node, message=message),
        )


@asynccontextmanager
async def running_cluster(
    h: Harness,
    *,
    control_plane: int = 3,
    workers: int = 3,
    cp_repave: dict[str, Any] | None = None,
    workers_repave: dict[str, Any] | None = None,
    dns: bool = False,
    timeouts: LifecycleTimeouts = FAST,
) -> AsyncIterator[StandInAgent]:
    """A running cluster under management, with its stand-in agent at work."""
    cluster = h.cluster(workers=workers, control_plane=control_plane)
    spec = cluster.spec
    spec.control_plane = NodePool(
        name=CP, count=control_plane, repave=RepavePolicy.model_validate(cp_repave or {})
    )
    spec.worker_pools = [
        NodePool(
            name="workers", count=workers, repave=RepavePolicy.model_validate(workers_repave or {})
        )
    ]
    if dns:
        spec.control_plane_endpoint = ControlPlaneEndpoint(mode=EndpointMode.DNS)
    acquired = await h.maas.acquire_machines(
        AcquireMachinesInput(
            account=cluster.account,
            cluster_id=cluster.cluster_id,
            request_id="create",
            pools=spec.pools,
        )
    )
    for m in acquired.machines:
        h.maas.machines[m.system_id].status = "Deployed"
    machines = [h.maas.machines[m.system_id].machine() for m in acquired.machines]
    if dns:  # create made the record, pointing at the control plane
        h.maas.endpoints[cluster.cluster_id] = (
            "api.maas",
            sorted(ip for m in machines if m.pool == CP for ip in m.ip_addresses),
        )
    state = ManageState(
        cluster=cluster,
        agent_token=agent_token(cluster.cluster_id),
        machines=machines,
        kubernetes_version="v1.30.4",
        timeouts=timeouts,
        control_plane_host="api.maas",
    )
    handle = await h.client.start_workflow(
        MANAGE_WORKFLOW,
        ManageInput(state=state),
        id=manage_workflow_id(cluster.cluster_id),
        task_queue=h.task_queue,
    )
    agent = StandInAgent(h, handle, cluster.cluster_id)
    agent.up = {m.hostname: m for m in machines}
    await agent.report()
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await h.stop_management(cluster.cluster_id)


async def repave(agent: StandInAgent, **request: str) -> str:
    """Repave and wait for the event that ends it; answers that line."""
    accepted = await update(agent.handle, UPDATE_REPAVE, RepaveRequest.model_validate(request))

    async def ended() -> str:
        ends = [e for e in events(agent) if e.startswith(f"{accepted.action_id} ")]
        assert any(" succeeded" in e or " failed" in e for e in ends), events(agent)[-5:]
        return ends[-1]

    return await assert_eventually(ended, within=90)


def events(agent: StandInAgent) -> list[str]:
    return [r.event for r in agent.h.cp.records.get(agent.cluster_id, []) if r.event]


async def state(agent: StandInAgent) -> ManageState:
    return await agent.handle.query(QUERY_STATE, result_type=ManageState)


def ips(machines: list[Machine], pool: str) -> list[str]:
    return sorted(ip for m in machines if m.pool == pool for ip in m.ip_addresses)


async def test_expand_first_rolls_a_3_plus_3_cluster_with_the_endpoint_following(
    client: Client,
) -> None:
    async with harness(client, machines=12, release_seconds=ERASING) as h:
        async with running_cluster(
            h,
            cp_repave={"strategy": "expand-first", "max_surge": 3},
            workers_repave={"strategy": "expand-first", "max_surge": 2},
            dns=True,
        ) as agent:
            before = {m.system_id for m in (await state(agent)).machines}
            line = await repave(agent, pool=CP)
            assert "succeeded: repaved 3 node(s) of pool control-plane" in line
            cp_out = list(agent.taken_out)
            # One at a time whatever max_surge says: the fresh one joined before each left.
            assert [t.others_up for t in cp_out] == [3, 3, 3]
            assert agent.max_owned == 6 + 1
            for taken in cp_out:
                leaving = next(m for m in h.maas.machines.values() if m.hostname == taken.node)
                assert leaving.machine().ip_addresses[0] not in taken.endpoint
                assert len(taken.endpoint) == 3  # the two staying and the fresh one

            line = await repave(agent, pool="workers")
            assert "succeeded: repaved 3 node(s) of pool workers" in line
            workers_out = agent.taken_out[3:]
            assert agent.max_owned == 6 + 2  # max_surge 2: two fresh workers at once
            assert [t.owned for t in workers_out] == [8, 8, 7]
            final = await state(agent)
        assert not before & {m.system_id for m in final.machines}
        assert len(final.machines) == 6 and len(agent.held()) == 6
        assert h.maas.endpoints[agent.cluster_id][1] == ips(final.machines, CP)
        assert any(
            "repaving" in e and "expand-first (strategy expand-first" in e for e in events(agent)
        )
        assert any("joined (NodesReady)" in e for e in events(agent))
        reasons = {r.reason for r in h.cp.records[agent.cluster_id]}
        assert {Reason.WAITING_FOR_AGENT, Reason.WAITING_FOR_DRAIN} <= reasons
        assert Phase.REPAVING in h.cp.phases(agent.cluster_id)
        assert PLAN_MACHINES not in h.maas.calls  # expand-first does not ask first


async def test_contract_first_keeps_quorum_and_redeploys_in_place_when_nothing_is_free(
    client: Client,
) -> None:
    async with harness(client, machines=8, release_seconds=ERASING) as h:
        async with running_cluster(
            h,
            cp_repave={"strategy": "contract-first"},
            workers_repave={"strategy": "contract-first", "max_unavailable": 2},
            dns=True,
        ) as agent:
            line = await repave(agent, pool=CP)
            assert "succeeded: repaved 3 node(s)" in line
            # Never more than one control-plane node out: two of three always up.
            assert [t.others_up for t in agent.taken_out] == [2, 2, 2]
            line = await repave(agent, pool="workers")
            assert "succeeded: repaved 3 node(s)" in line
            # max_unavailable 2: the first two are out together (one of three stays up),
            # the last one leaves once they are back.
            assert [t.others_up for t in agent.taken_out[3:]] == [2, 1, 2]
            final = await state(agent)
        # Two spare machines: the first two control-plane nodes got fresh ones, then every
        # other node was redeployed on its own machine.
        redeploys = [c for c in h.maas.calls if c.startswith(RELEASE_FOR_REDEPLOY)]
        assert len(redeploys) == 4
        assert agent.max_owned == 6  # contract-first never holds more than the pools' size
        assert h.maas.endpoints[agent.cluster_id][1] == ips(final.machines, CP)
        for taken in agent.taken_out[:3]:
            leaving = next(m for m in h.maas.machines.values() if m.hostname == taken.node)
            assert leaving.machine().ip_addresses[0] not in taken.endpoint
        assert any("no other free machine matches" in e for e in events(agent))


async def test_auto_chooses_by_the_free_machines_and_waits_for_the_gateway(
    client: Client,
) -> None:
    async with harness(client, machines=5, release_seconds=ERASING, gateway_up=False) as h:
        async with running_cluster(h, control_plane=1, workers=3) as agent:
            accepted = update(agent.handle, UPDATE_REPAVE, RepaveRequest(pool="workers"))
            await accepted
            await h.wait_reason(agent.cluster_id, Reason.WAITING_FOR_GATEWAY)
            waiting = h.cp.last(agent.cluster_id)
            assert waiting is not None and waiting.phase == Phase.REPAVING

            async with h.gateway_worker():

                async def ended() -> None:
                    assert any(" succeeded: repaved 3 node(s)" in e for e in events(agent))

                await assert_eventually(ended, within=90)
        lines = [e for e in events(agent) if ": repaving " in e]
        assert "expand-first (auto: 1 free machine(s) match pool workers" in lines[0]
        assert all("contract-first (auto: no free machine matches" in e for e in lines[1:])
        assert len(lines) == 3
        assert h.maas.calls.count(PLAN_MACHINES) == 3
        assert any(f"gateway {h.gateway.name} is back" in e for e in events(agent))


async def test_a_fresh_machine_that_never_joins_is_released_and_nothing_else_changes(
    client: Client,
) -> None:
    quick = FAST.model_copy(update={"agent_ready": 2.0})
    async with harness(client, machines=7, release_seconds=ERASING) as h:
        async with running_cluster(
            h,
            control_plane=1,
            workers=2,
            workers_repave={"strategy": "expand-first"},
            timeouts=quick,
        ) as agent:
            agent.never_join = {"node-3"}  # the only free machine
            before = (await state(agent)).machines
            line = await repave(agent, node=before[-1].hostname)
            assert "failed (AgentTimeout)" in line and "node-3 did not report Ready" in line
            after = await state(agent)
        assert after.machines == before
        assert h.maas.machines["m3"].status == "Disk erasing"  # released
        assert agent.taken_out == []  # the old node was never touched
        assert any(
            "released node-3 (taken by a repave that did not finish" in e for e in events(agent)
        )


async def test_a_drain_that_fails_gives_the_fresh_machine_back_and_uncordons(
    client: Client,
) -> None:
    async with harness(client, machines=7, release_seconds=ERASING) as h:
        async with running_cluster(
            h, control_plane=1, workers=2, workers_repave={"strategy": "expand-first"}
        ) as agent:
            before = (await state(agent)).machines
            old = before[-1]
            agent.fail_take_out = {old.hostname}
            line = await repave(agent, node=old.system_id)
            assert "failed (RepaveBlocked)" in line and old.hostname in line
            after = await state(agent)
        assert after.machines == before
        assert h.maas.machines["m3"].owner is None or h.maas.machines["m3"].status == "Disk erasing"
        assert agent.commands == [
            (ActionKind.REPAVE, old.hostname),
            (ActionKind.UNCORDON, old.hostname),
        ]
        assert any("drain of" in e and "PodDisruptionBudget web-pdb" in e for e in events(agent))
        assert any(f"{old.hostname} stays in the cluster, uncordoned" in e for e in events(agent))


async def test_a_lone_control_plane_without_a_free_machine_is_not_repaved(
    client: Client,
) -> None:
    async with harness(client, machines=3) as h:
        async with running_cluster(h, control_plane=1, workers=2) as agent:
            await rejected(
                agent.handle, UPDATE_REPAVE, RepaveRequest(pool="gpu"), match="no pool 'gpu'"
            )
            line = await repave(agent, pool=CP)
            await rejected(
                agent.handle, UPDATE_REPAVE, RepaveRequest(node="nope"), match="no node 'nope'"
            )
        assert "failed (RepaveBlocked)" in line and "only expand-first" in line
        assert agent.commands == [] and ACQUIRE_MACHINES not in h.maas.calls[1:]
