"""Control-plane activities of the orphan sweeper: which accounts to sweep, what is claimed,
what to record.

`claims` decides for `cp.cluster_claims` (activities.control_plane). A machine is released
only when it is provably ours and provably abandoned: marked by this installation (or by
an unmarked older one for a cluster the store knows ended), its cluster neither live in the
store nor open in Temporal. So a second installation on the same MAAS, or a store restored
from an older backup (live clusters it does not know), cannot make the sweeper release a
live machine.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.models import (
    CLUSTER_LEFTOVERS,
    LIST_GATEWAY_ACCOUNTS,
    LIVE_CLUSTERS,
    RECORD_ORPHAN_RELEASE,
    ClusterClaimsInput,
    ClusterClaimsResult,
    ClusterLeftoversInput,
    ListGatewayAccountsInput,
    ListGatewayAccountsResult,
    LiveClustersInput,
    LiveClustersResult,
    RecordOrphanReleaseInput,
)
from domain.cluster import ClusterSpec, EndpointMode
from domain.leftovers import LeftBehind, endpoint_of_event
from domain.lifecycle import GatewayRef
from domain.maas import MaasAccount, Machine
from domain.naming import (
    SYSTEM_GATEWAY_ID,
    SYSTEM_GATEWAY_NAME,
    create_workflow_id,
    delete_workflow_id,
    endpoint_record_name,
    manage_workflow_id,
)
from domain.phases import TERMINAL_PHASES, Phase, Reason
from store.db import SessionFactory
from store.models import CloudAccount, Cluster, ClusterEvent, Gateway
from store.secrets import SecretBox, maas_account

log = logging.getLogger(__name__)


async def claims(
    sessions: SessionFactory, client: Client, installation: str, inp: ClusterClaimsInput
) -> ClusterClaimsResult:
    """Split machines into claimed (keep) and unclaimed (an orphan of this installation)."""
    owners = {m.cluster_id for m in inp.machines}
    async with sessions() as session:
        rows = await session.execute(
            select(Cluster.id, Cluster.phase).where(Cluster.id.in_(owners))
        )
        phases: dict[str, str] = {cluster_id: phase for cluster_id, phase in rows}
    terminal = {p.value for p in TERMINAL_PHASES}
    open_clusters: dict[str, bool] = {}
    claimed: list[str] = []
    unclaimed: list[str] = []
    for machine in inp.machines:
        owner, phase = machine.cluster_id, phases.get(machine.cluster_id)
        if machine.installation_id and machine.installation_id != installation:
            keep = True  # another installation's: never ours to judge
        elif phase is not None and phase not in terminal:
            keep = True
        elif phase is None and not machine.installation_id:
            keep = True  # marked before installations were named: cannot tell whose
        else:
            if owner not in open_clusters:
                open_clusters[owner] = await _has_open_workflow(client, owner)
            keep = open_clusters[owner]
        (claimed if keep else unclaimed).append(machine.system_id)
    for owner in sorted(o for o, is_open in open_clusters.items() if is_open):
        if owner not in phases:
            log.warning(
                "cluster %s is not in the store but has open workflows: its machines are kept "
                "(was the store restored from an older backup?)",
                owner,
            )
    return ClusterClaimsResult(claimed=claimed, unclaimed=unclaimed)


async def _has_open_workflow(client: Client, cluster_id: str) -> bool:
    for workflow_id in (
        create_workflow_id(cluster_id),
        manage_workflow_id(cluster_id),
        delete_workflow_id(cluster_id),
    ):
        try:
            described = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            return True
    return False


class OrphanActivities:
    def __init__(self, sessions: SessionFactory, box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    @activity.defn(name=LIST_GATEWAY_ACCOUNTS)
    async def list_gateway_accounts(
        self, inp: ListGatewayAccountsInput
    ) -> ListGatewayAccountsResult:
        """Every cloud account bound to the gateway; one MAAS shared by accounts is listed once."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(CloudAccount)
                    .where(CloudAccount.gateway_id == inp.gateway_id)
                    .order_by(CloudAccount.created_at)
                )
            ).all()
        accounts: dict[tuple[str, str], MaasAccount] = {}
        for row in rows:
            account = maas_account(row, self._box)
            key = row.maas_api_key_fingerprint or account.api_key
            accounts.setdefault((row.maas_url, key), account)
        return ListGatewayAccountsResult(accounts=list(accounts.values()))

    @activity.defn(name=RECORD_ORPHAN_RELEASE)
    async def record_orphan_release(self, inp: RecordOrphanReleaseInput) -> None:
        """Append one event per known cluster; machines of unknown clusters are only logged."""
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for machine in inp.machines:
            by_cluster[machine.cluster_id].append(machine.system_id)
        for endpoint in inp.endpoints:
            by_cluster[endpoint.cluster_id].append(f"endpoint {endpoint.fqdn}")
        async with self._sessions.begin() as session:
            known = set(
                (await session.scalars(select(Cluster.id).where(Cluster.id.in_(by_cluster)))).all()
            )
            # A force-deleted cluster lists what it left in MAAS: what the sweep released is
            # no longer left.
            released = {m.system_id for m in inp.machines}
            deleted = await session.scalars(
                select(Cluster).where(
                    Cluster.id.in_(by_cluster), Cluster.phase == Phase.DELETED.value
                )
            )
            for cluster in deleted.all():
                cluster.machines = [
                    m for m in cluster.machines if m.get("system_id") not in released
                ]
            for cluster_id, system_ids in sorted(by_cluster.items()):
                message = (
                    f"orphan sweep on gateway {inp.gateway_id} released "
                    f"{', '.join(sorted(system_ids))} ({inp.account_url})"
                )
                log.warning("cluster %s: %s", cluster_id, message)
                if cluster_id in known:
                    # Idempotent on retry: the same message for the same cluster is written once.
                    exists = await session.scalar(
                        select(ClusterEvent.id).where(
                            ClusterEvent.cluster_id == cluster_id,
                            ClusterEvent.reason == Reason.ORPHAN_RELEASED.value,
                            ClusterEvent.message == message,
                        )
                    )
                    if exists is None:
                        session.add(
                            ClusterEvent(
                                cluster_id=cluster_id,
                                reason=Reason.ORPHAN_RELEASED.value,
                                message=message,
                            )
                        )

    @activity.defn(name=LIVE_CLUSTERS)
    async def live_clusters(self, inp: LiveClustersInput) -> LiveClustersResult:
        """The clusters that exist and are neither Failed nor Deleted, as for machine claims."""
        async with self._sessions() as session:
            live = (
                await session.scalars(
                    select(Cluster.id).where(
                        Cluster.id.in_(inp.cluster_ids),
                        Cluster.phase.not_in([p.value for p in TERMINAL_PHASES]),
                    )
                )
            ).all()
        return LiveClustersResult(live=sorted(live))

    @activity.defn(name=CLUSTER_LEFTOVERS)
    async def cluster_leftovers(self, inp: ClusterLeftoversInput) -> LeftBehind:
        """The machines the store lists for the cluster and its endpoint, as last recorded."""
        async with self._sessions() as session:
            cluster = await session.get(Cluster, inp.cluster_id)
            if cluster is None:
                return LeftBehind()
            events = (
                await session.scalars(
                    select(ClusterEvent.message)
                    .where(
                        ClusterEvent.cluster_id == inp.cluster_id,
                        ClusterEvent.message.startswith("control-plane endpoint ("),
                    )
                    .order_by(ClusterEvent.id.desc())
                    .limit(1)
                )
            ).all()
            machines = [Machine.model_validate(m) for m in cluster.machines]
            mode = ClusterSpec.model_validate(cluster.spec).control_plane_endpoint.mode
        found = endpoint_of_event(events[0]) if events else None
        host = found[1] if found else ""
        if mode == EndpointMode.VIP:
            # The VIP is reserved under the marked name: both stay until released.
            return LeftBehind(
                machines=machines, vip=host, dns_record=endpoint_record_name(inp.cluster_id)
            )
        if mode == EndpointMode.DNS:
            return LeftBehind(
                machines=machines, dns_record=host or endpoint_record_name(inp.cluster_id)
            )
        return LeftBehind(machines=machines)

    def all(self) -> list[Any]:
        """Every activity of this class, for a worker's `activities=`."""
        return [
            self.list_gateway_accounts,
            self.record_orphan_release,
            self.live_clusters,
            self.cluster_leftovers,
        ]


async def registered_gateways(
    sessions: SessionFactory, *, system_gateway: bool
) -> list[GatewayRef]:
    """Every registered gateway (and the system one when it exists): each has a sweep."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Gateway.id, Gateway.name).where(Gateway.registered_at.is_not(None))
            )
        ).all()
    refs = [GatewayRef(id=gateway_id, name=name) for gateway_id, name in rows]
    if system_gateway:
        refs.append(GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME))
    return refs
