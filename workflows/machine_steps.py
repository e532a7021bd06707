"""Steps on one of a running cluster's machines, shared by remediation and repave."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.remediation_models import (
        RELEASE_FOR_REDEPLOY,
        RemediateMachineInput,
        RemediateMachineResult,
    )
    from domain.maas import Machine
    from workflows.contracts import ManageState
    from workflows.deploy import Deployer
    from workflows.gateway_calls import GatewayCalls


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
