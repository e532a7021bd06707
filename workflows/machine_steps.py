"""Steps on one of a running cluster's machines, shared by remediation and repave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.remediation_models import (
        RELEASE_FOR_REDEPLOY,
        RemediateMachineInput,
        RemediateMachineResult,
    )
    from domain.cluster import NodePool
    from domain.maas import Machine
    from workflows.contracts import ManageState
    from workflows.deploy import Deployer
    from workflows.gateway_calls import GatewayCalls

# Acquire and deploy `pool.count` fresh machines of a pool under one request id (the
# management workflow's scale-up, which gives back what it took if it fails), leaving out
# the system ids of the first list; the second names the machines they replace, whose zones
# the zone spread gives back.
AddMachines = Callable[[str, NodePool, list[str], list[str]], Awaitable[list[Machine]]]


def command_runner(state: ManageState, leaving: Collection[str]) -> Machine | None:
    """The first control-plane node reported Ready that is neither `leaving` (system ids)
    nor under remediation: its agent runs the command that takes those nodes out (removes a
    control plane's etcd member through its own etcd; the first control plane may be one of
    them)."""
    tracked = {t.system_id for t in state.remediation}
    ready = {n.hostname for n in state.nodes if n.ready}
    pool = state.cluster.spec.control_plane.name
    return next(
        (
            m
            for m in state.machines
            if m.pool == pool
            and m.system_id not in leaving
            and m.system_id not in tracked
            and m.hostname in ready
        ),
        None,
    )


async def redeploy_in_place(
    state: ManageState,
    calls: GatewayCalls,
    machine: Machine,
    *,
    request_prefix: str,
    reason: str,
    held: dict[str, Machine] | None = None,
) -> Machine:
    """Deploy the same machine again with fresh cloud-init: released without erase and
    allocated back under the cluster's marks first. Answers the deployed machine, which is a
    replacement when the redeploy failed; `held` (updated in place) is what it holds."""
    cluster = state.cluster
    await calls.run(
        RELEASE_FOR_REDEPLOY,
        RemediateMachineInput(
            account=cluster.account,
            cluster_id=cluster.cluster_id,
            system_id=machine.system_id,
            pool=machine.pool,
            reason=reason,
            poll_interval_seconds=state.timeouts.release_poll_interval,
        ),
        RemediateMachineResult,
        start_to_close=state.timeouts.release_none,
    )
    deployer = Deployer(
        cluster,
        calls,
        agent_token=state.agent_token,
        kubernetes_version=state.kubernetes_version,
        held=held if held is not None else {machine.system_id: machine},
        request_prefix=request_prefix,
        control_plane_host=state.control_plane_host,
    )
    [deployed] = await deployer.deploy_all([machine])
    return deployed
