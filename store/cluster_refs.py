"""A cluster's lifecycle reference, read from the store: what the API and the reconciler hand
a create or delete saga. The MAAS key travels in the form the store keeps (sealed to the gateway)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.cluster import ClusterSpec
from domain.gateway import ProxySettings
from domain.lifecycle import ClusterRef, GatewayRef
from domain.naming import SYSTEM_GATEWAY_ID, SYSTEM_GATEWAY_NAME
from store.models import CloudAccount, Cluster, Gateway
from store.secrets import SecretBox, maas_account


class ClusterPartGone(LookupError):
    """The cluster's cloud account or gateway is no longer in the store."""


async def gateway_ref(session: AsyncSession, account: CloudAccount, owner: str) -> GatewayRef:
    """The gateway that reaches the account's MAAS; `owner` names who asks when it is gone."""
    if account.gateway_id == SYSTEM_GATEWAY_ID:
        return GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME)
    row = await session.get(Gateway, account.gateway_id)
    if row is None:
        raise ClusterPartGone(f"{owner}: gateway {account.gateway_id} is gone")
    return GatewayRef(id=row.id, name=row.name, proxy=ProxySettings.model_validate(row.proxy))


async def cluster_ref(
    session: AsyncSession, box: SecretBox, cluster: Cluster, *, installation_id: str
) -> ClusterRef:
    """The cluster with its gateway and MAAS account; ClusterPartGone names what is missing."""
    account = await session.get(CloudAccount, cluster.cloud_account_id)
    if account is None:
        raise ClusterPartGone(
            f"cluster {cluster.name}: its cloud account {cluster.cloud_account_id} is gone"
        )
    gateway = await gateway_ref(session, account, f"cluster {cluster.name}")
    return ClusterRef(
        cluster_id=cluster.id,
        project_id=cluster.project_id,
        spec=ClusterSpec.model_validate(cluster.spec),
        gateway=gateway,
        account=maas_account(account, box),
        installation_id=installation_id,
    )
