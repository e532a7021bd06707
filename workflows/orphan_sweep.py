"""OrphanSweep: release machines that carry our ownership marks but no live cluster claims,
and remove control-plane endpoints (VIPs, DNS names) marked for a cluster that is gone.

A crash can only leak a machine if every saga that could release it is gone (for example a
cluster row removed by hand, or a bug). The sweeper is the backstop: per gateway, on a
Temporal schedule, it lists marked machines, asks the control plane which are claimed (live
in the store, open in Temporal, or another installation's: see activities.orphans.claims),
waits a grace period, asks again, and releases only machines unclaimed both times by the
same cluster.
Machines allocated with our key but not yet marked (`cluster_id == ""`) are never touched:
they belong to an acquire in flight, which adopts them on retry.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        CLUSTER_CLAIMS,
        FIND_OWNED,
        FIND_OWNED_ENDPOINTS,
        LIST_GATEWAY_ACCOUNTS,
        LIVE_CLUSTERS,
        MAAS_NON_RETRYABLE,
        RECORD_ORPHAN_RELEASE,
        RELEASE_MACHINES,
        REMOVE_ENDPOINT,
        ClusterClaimsInput,
        ClusterClaimsResult,
        FindOwnedEndpointsInput,
        FindOwnedEndpointsResult,
        FindOwnedInput,
        FindOwnedResult,
        ListGatewayAccountsInput,
        ListGatewayAccountsResult,
        LiveClustersInput,
        LiveClustersResult,
        OwnedEndpoint,
        OwnedMachine,
        RecordOrphanReleaseInput,
        ReleaseMachinesInput,
        ReleaseMachinesResult,
        RemoveEndpointInput,
        RemoveEndpointResult,
    )
    from domain.lifecycle import GatewayRef
    from domain.maas import MaasAccount
    from domain.naming import (
        CONTROL_PLANE_QUEUE,
        ORPHAN_SWEEP_WORKFLOW,
        gateway_queue,
    )
    from workflows.contracts import OrphanSweepInput
    from workflows.endpoint import ENDPOINT_PATCH

# A sweep waits for its gateway at most this long per call; the next scheduled run retries,
# so an offline gateway costs one failed run, not a pile of waiting ones (overlap: skip).
MAAS_CALL_TIMEOUT = timedelta(minutes=5)
CP_CALL_TIMEOUT = timedelta(minutes=1)
MAAS_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=10), non_retryable_error_types=MAAS_NON_RETRYABLE
)


class OrphanSweepResult(BaseModel):
    suspects: int = 0
    released: list[str] = Field(default_factory=list)
    removed_endpoints: list[str] = Field(default_factory=list, description="their DNS names")


@workflow.defn(name=ORPHAN_SWEEP_WORKFLOW)
class OrphanSweep:
    @workflow.run
    async def run(self, inp: OrphanSweepInput) -> OrphanSweepResult:
        listed: ListGatewayAccountsResult = await workflow.execute_activity(
            LIST_GATEWAY_ACCOUNTS,
            ListGatewayAccountsInput(gateway_id=inp.gateway.id),
            result_type=ListGatewayAccountsResult,
            task_queue=CONTROL_PLANE_QUEUE,
            start_to_close_timeout=CP_CALL_TIMEOUT,
        )
        first = {a.url: await self._unclaimed(inp.gateway, a) for a in listed.accounts}
        sweep_endpoints = workflow.patched(ENDPOINT_PATCH)
        first_endpoints = {
            a.url: await self._unclaimed_endpoints(inp.gateway, a) if sweep_endpoints else []
            for a in listed.accounts
        }
        suspects = sum(len(m) for m in first.values()) + sum(
            len(e) for e in first_endpoints.values()
        )
        if not suspects:
            return OrphanSweepResult()
        await workflow.sleep(timedelta(seconds=inp.grace_seconds))
        result = OrphanSweepResult(suspects=suspects)
        for account in listed.accounts:
            again = await self._unclaimed(inp.gateway, account)
            # Same machine, same owner, unclaimed before and after the grace period.
            before = {(m.system_id, m.cluster_id) for m in first[account.url]}
            orphans = [m for m in again if (m.system_id, m.cluster_id) in before]
            endpoints: list[OwnedEndpoint] = []
            if first_endpoints[account.url]:
                named = {(e.fqdn, e.cluster_id) for e in first_endpoints[account.url]}
                endpoints = [
                    e
                    for e in await self._unclaimed_endpoints(inp.gateway, account)
                    if (e.fqdn, e.cluster_id) in named
                ]
            if orphans or endpoints:
                result.released += await self._release(inp.gateway, account, orphans, endpoints)
                result.removed_endpoints += [e.fqdn for e in endpoints]
        return result

    async def _unclaimed_endpoints(
        self, gateway: GatewayRef, account: MaasAccount
    ) -> list[OwnedEndpoint]:
        owned: FindOwnedEndpointsResult = await workflow.execute_activity(
            FIND_OWNED_ENDPOINTS,
            FindOwnedEndpointsInput(account=account),
            result_type=FindOwnedEndpointsResult,
            task_queue=gateway_queue(gateway.id),
            schedule_to_close_timeout=MAAS_CALL_TIMEOUT,
            retry_policy=MAAS_RETRY,
        )
        if not owned.endpoints:
            return []
        claims: LiveClustersResult = await workflow.execute_activity(
            LIVE_CLUSTERS,
            LiveClustersInput(cluster_ids=sorted({e.cluster_id for e in owned.endpoints})),
            result_type=LiveClustersResult,
            task_queue=CONTROL_PLANE_QUEUE,
            start_to_close_timeout=CP_CALL_TIMEOUT,
        )
        live = set(claims.live)
        return [e for e in owned.endpoints if e.cluster_id not in live]

    async def _unclaimed(self, gateway: GatewayRef, account: MaasAccount) -> list[OwnedMachine]:
        owned: FindOwnedResult = await workflow.execute_activity(
            FIND_OWNED,
            FindOwnedInput(account=account),
            result_type=FindOwnedResult,
            task_queue=gateway_queue(gateway.id),
            schedule_to_close_timeout=MAAS_CALL_TIMEOUT,
            retry_policy=MAAS_RETRY,
        )
        marked = [m for m in owned.machines if m.cluster_id]
        if not marked:
            return []
        claims: ClusterClaimsResult = await workflow.execute_activity(
            CLUSTER_CLAIMS,
            ClusterClaimsInput(gateway_id=gateway.id, machines=marked),
            result_type=ClusterClaimsResult,
            task_queue=CONTROL_PLANE_QUEUE,
            start_to_close_timeout=CP_CALL_TIMEOUT,
        )
        unclaimed = set(claims.unclaimed)
        return [m for m in marked if m.system_id in unclaimed]

    async def _release(
        self,
        gateway: GatewayRef,
        account: MaasAccount,
        orphans: list[OwnedMachine],
        endpoints: list[OwnedEndpoint],
    ) -> list[str]:
        released: list[str] = []
        for cluster_id in sorted({m.cluster_id for m in orphans}):
            done: ReleaseMachinesResult = await workflow.execute_activity(
                RELEASE_MACHINES,
                ReleaseMachinesInput(
                    account=account,
                    cluster_id=cluster_id,
                    system_ids=[m.system_id for m in orphans if m.cluster_id == cluster_id],
                    comment=f"metalgate orphan sweep: cluster {cluster_id} no longer claims it",
                ),
                result_type=ReleaseMachinesResult,
                task_queue=gateway_queue(gateway.id),
                schedule_to_close_timeout=MAAS_CALL_TIMEOUT,
                retry_policy=MAAS_RETRY,
            )
            released += done.released
        for cluster_id in sorted({e.cluster_id for e in endpoints}):
            await workflow.execute_activity(
                REMOVE_ENDPOINT,
                RemoveEndpointInput(account=account, cluster_id=cluster_id),
                result_type=RemoveEndpointResult,
                task_queue=gateway_queue(gateway.id),
                schedule_to_close_timeout=MAAS_CALL_TIMEOUT,
                retry_policy=MAAS_RETRY,
            )
        await workflow.execute_activity(
            RECORD_ORPHAN_RELEASE,
            RecordOrphanReleaseInput(
                gateway_id=gateway.id,
                account_url=account.url,
                machines=orphans,
                endpoints=endpoints,
            ),
            task_queue=CONTROL_PLANE_QUEUE,
            start_to_close_timeout=CP_CALL_TIMEOUT,
        )
        return released
