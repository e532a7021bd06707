"""Deploy acquired machines in parallel, replacing the ones whose deployment fails.

Shared by the create saga and by scale-up in the management workflow.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        DEPLOY_MACHINE,
        MAAS_NON_RETRYABLE,
        RENDER_CLOUD_INIT,
        WAIT_DEPLOYED,
        DeployMachineInput,
        DeployMachineResult,
        RenderCloudInitInput,
        RenderCloudInitResult,
        WaitDeployedInput,
        WaitDeployedResult,
    )
    from domain.agent_wire import NodeRole
    from domain.lifecycle import ClusterRef
    from domain.maas import Machine
    from domain.phases import Reason
    from workflows.endpoint import Endpoint
    from workflows.gateway_calls import GatewayCalls, error_type
    from workflows.status import control_plane_call, gather_cancelling

# A retry resumes the wait after a lost gateway replica (heartbeat timeout); each attempt may
# last the whole deploy timeout, so a machine that never deploys fails after a few, not eight.
WAIT_DEPLOYED_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=MAAS_NON_RETRYABLE,
)


def image_parts(image: str) -> tuple[str, str]:
    """MAAS's (osystem, distro_series) for a pool image: `ubuntu/jammy` -> ("ubuntu",
    "jammy"), `custom/k8s` -> ("custom", "k8s"); a bare series is Ubuntu's."""
    osystem, _, series = image.rpartition("/")
    return osystem or "ubuntu", series


class Deployer:
    """Deploys machines of one cluster; `held` is the caller's record of what it holds.

    `held` is updated in place as failed machines leave and replacements arrive, so the
    caller's compensation always releases exactly what is held at that moment.
    """

    def __init__(
        self,
        cluster: ClusterRef,
        calls: GatewayCalls,
        *,
        agent_token: str,
        kubernetes_version: str,
        held: dict[str, Machine],
        request_prefix: str = "",
        control_plane_host: str = "",
        endpoint: Endpoint | None = None,
    ) -> None:
        self.cluster = cluster
        self.calls = calls
        self.agent_token = agent_token
        self.kubernetes_version = kubernetes_version
        self.held = held
        self.request_prefix = request_prefix
        self.control_plane_host = control_plane_host
        # Told when a control-plane machine starts deploying (its IP is known from then on).
        self.endpoint = endpoint
        self.replacements = 0
        self.failed: list[str] = []
        # MAAS ownership marks assume one acquire request in flight per cluster.
        self._acquire_lock = asyncio.Lock()

    async def deploy_all(
        self, machines: list[Machine], *, first_control_plane: str | None = None
    ) -> list[Machine]:
        """Deploy every machine; `first_control_plane` is the system id that bootstraps etcd."""
        return await gather_cancelling(
            *(self._deploy_slot(m, m.system_id == first_control_plane) for m in machines)
        )

    async def _deploy_slot(self, machine: Machine, first_control_plane: bool) -> Machine:
        while True:
            try:
                return await self._deploy_one(machine, first_control_plane)
            except ActivityError as err:
                if error_type(err) != Reason.MACHINE_DEPLOY_FAILED:
                    raise
                machine = await self._replace(machine, err)

    async def _deploy_one(self, machine: Machine, first_control_plane: bool) -> Machine:
        spec = self.cluster.spec
        role = (
            NodeRole.CONTROL_PLANE if machine.pool == spec.control_plane.name else NodeRole.WORKER
        )
        rendered = await control_plane_call(
            RENDER_CLOUD_INIT,
            RenderCloudInitInput(
                cluster_id=self.cluster.cluster_id,
                cluster_name=spec.name,
                agent_token=self.agent_token,
                machine=machine,
                role=role,
                first_control_plane=first_control_plane,
                kubernetes_version=self.kubernetes_version,
                proxy=self.cluster.gateway.proxy,
                control_plane_host=self.control_plane_host,
            ),
            RenderCloudInitResult,
        )
        pool = spec.pool(machine.pool)
        osystem, series = image_parts(spec.image_of(pool) if pool else spec.distro_series)
        await self.calls.run(
            DEPLOY_MACHINE,
            DeployMachineInput(
                account=self.cluster.account,
                cluster_id=self.cluster.cluster_id,
                system_id=machine.system_id,
                osystem=osystem,
                distro_series=series,
                hwe_kernel=spec.hwe_kernel,
                user_data=rendered.user_data,
            ),
            DeployMachineResult,
        )
        if self.endpoint is not None and role == NodeRole.CONTROL_PLANE:
            await self.endpoint.control_plane_changed()
        timeouts = self.calls.timeouts
        deployed = await self.calls.run(
            WAIT_DEPLOYED,
            WaitDeployedInput(
                account=self.cluster.account,
                cluster_id=self.cluster.cluster_id,
                system_id=machine.system_id,
                poll_interval_seconds=timeouts.deploy_poll_interval,
            ),
            WaitDeployedResult,
            start_to_close=timeouts.deploy,
            # Several missed polls, not one, before a gateway replica counts as lost.
            heartbeat=max(10.0, timeouts.deploy_poll_interval * 5),
            retry=WAIT_DEPLOYED_RETRY,
        )
        self.held[machine.system_id] = deployed.machine
        return deployed.machine

    async def _replace(self, failed: Machine, err: ActivityError) -> Machine:
        """Drop a machine that failed to deploy (the activity quarantined it) and take another."""
        self.held.pop(failed.system_id, None)
        self.failed.append(failed.system_id)
        limit = self.calls.timeouts.max_deploy_replacements
        if self.replacements >= limit:
            raise ApplicationError(
                f"{failed.hostname} failed to deploy and all {limit} replacements are used: "
                f"{err.cause}",
                type=Reason.MACHINE_DEPLOY_FAILED.value,
                non_retryable=True,
            ) from err
        self.replacements += 1
        request_id = f"{self.request_prefix}replace-{self.replacements}"
        workflow.logger.warning(
            "cluster %s: %s failed to deploy; replacing it (%s)",
            self.cluster.cluster_id,
            failed.hostname,
            request_id,
        )
        await self.calls.status.event(
            f"{failed.hostname} ({failed.system_id}) failed to deploy and is quarantined; "
            f"replacing it ({self.replacements}/{limit})"
        )
        # The quarantine tag keeps it out of every later allocation, so it can go back now
        # instead of staying allocated to this cluster.
        await self.calls.release(
            self.cluster,
            [failed.system_id],
            f"metalgate: deploy failed for cluster {self.cluster.cluster_id}",
        )
        pool = self.cluster.spec.pool(failed.pool)
        if pool is None:
            raise ApplicationError(
                f"machine {failed.system_id} names pool {failed.pool!r}, not in the spec",
                type=Reason.INTERNAL_ERROR.value,
                non_retryable=True,
            )
        async with self._acquire_lock:
            acquired = await self.calls.acquire(
                self.cluster,
                request_id,
                [pool.model_copy(update={"count": 1})],
                exclude_system_ids=[*self.failed, *self.held],
            )
        replacement = acquired.machines[0]
        self.held[replacement.system_id] = replacement
        return replacement
