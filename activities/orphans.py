"""Control-plane activities of the orphan sweeper: which accounts to sweep, what to record.

Deciding whether a machine is claimed is `cp.cluster_claims` (activities.control_plane);
these two only read the accounts of a gateway and write the sweeper's events.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client

from activities.models import (
    LIST_GATEWAY_ACCOUNTS,
    LIVE_CLUSTERS,
    RECORD_ORPHAN_RELEASE,
    ListGatewayAccountsInput,
    ListGatewayAccountsResult,
    LiveClustersInput,
    LiveClustersResult,
    RecordOrphanReleaseInput,
)
from domain.maas import MaasAccount
from domain.naming import SYSTEM_GATEWAY_ID, SYSTEM_GATEWAY_NAME
from domain.phases import TERMINAL_PHASES, Reason
from store.db import SessionFactory
from store.models import CloudAccount, Cluster, ClusterEvent, Gateway
from store.secrets import SecretBox
from workflows.contracts import GatewayRef
from workflows.orphan_sweep import ensure_orphan_sweep_schedule

log = logging.getLogger(__name__)


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
            key = self._box.decrypt(row.maas_api_key_enc)
            accounts.setdefault((row.maas_url, key), MaasAccount(url=row.maas_url, api_key=key))
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

    def all(self) -> list[Any]:
        """Every activity of this class, for a worker's `activities=`."""
        return [self.list_gateway_accounts, self.record_orphan_release, self.live_clusters]


async def ensure_orphan_sweeps(
    client: Client, sessions: SessionFactory, *, system_gateway: bool
) -> list[str]:
    """One sweep schedule per registered gateway (and the system one when it exists).

    Called at every control-plane worker start, so gateways registered before the sweeper
    existed, or while no worker ran, get theirs too. Returns the gateway ids.
    """
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Gateway.id, Gateway.name).where(Gateway.registered_at.is_not(None))
            )
        ).all()
    refs = [GatewayRef(id=gateway_id, name=name) for gateway_id, name in rows]
    if system_gateway:
        refs.append(GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME))
    for ref in refs:
        await ensure_orphan_sweep_schedule(client, ref, replace=False)
    return [ref.id for ref in refs]
