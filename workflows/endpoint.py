"""The cluster's control-plane endpoint as the sagas see it: made before the first
control-plane node deploys, kept pointing at the control plane (mode dns), removed on
failure and delete. The MAAS side is activities.maas_endpoint, on the gateway's queue.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        ENSURE_ENDPOINT,
        REMOVE_ENDPOINT,
        EnsureEndpointInput,
        EnsureEndpointResult,
        RemoveEndpointInput,
        RemoveEndpointResult,
    )
    from domain.cluster import EndpointMode
    from domain.leftovers import endpoint_event
    from domain.lifecycle import ClusterRef
    from workflows.gateway_calls import GatewayCalls

# Histories recorded before the sagas made an endpoint replay without these calls.
ENDPOINT_PATCH = "control-plane-endpoint"


class Endpoint:
    """One cluster's endpoint, for one workflow run."""

    def __init__(self, cluster: ClusterRef, calls: GatewayCalls) -> None:
        self.cluster = cluster
        self.calls = calls
        self.host = ""

    @property
    def follows_machines(self) -> bool:
        """Whether the endpoint must learn of control-plane machines as they deploy."""
        return self.cluster.spec.control_plane_endpoint.mode == EndpointMode.DNS

    async def _ensure(self, exclude_system_ids: list[str]) -> EnsureEndpointResult:
        spec = self.cluster.spec
        return await self.calls.run(
            ENSURE_ENDPOINT,
            EnsureEndpointInput(
                account=self.cluster.account,
                cluster_id=self.cluster.cluster_id,
                endpoint=spec.control_plane_endpoint,
                control_plane_pool=spec.control_plane.name,
                exclude_system_ids=exclude_system_ids,
            ),
            EnsureEndpointResult,
        )

    async def ensure(
        self, exclude_system_ids: list[str] | None = None, *, announce: bool = False
    ) -> str:
        """Make the endpoint (or find it again) and answer its host; in dns mode this also
        points the name at every control-plane machine MAAS is deploying but the excluded
        ones. An event records the endpoint when its host changed, or always with `announce`."""
        result = await self._ensure(exclude_system_ids or [])
        if result.host != self.host or announce:
            await self.calls.status.event(
                endpoint_event(result.mode, result.host, result.addresses)
            )
        self.host = result.host
        return result.host

    async def point_at_control_plane(self, exclude_system_ids: list[str]) -> list[str] | None:
        """Mode dns: point the name at the control-plane machines but the excluded ones (being
        repaired) and answer its addresses; None in the other modes, where nothing follows."""
        if not self.follows_machines:
            return None
        result = await self._ensure(exclude_system_ids)
        self.host = result.host
        return result.addresses

    async def control_plane_changed(
        self, exclude_system_ids: list[str] | None = None, *, announce: bool = False
    ) -> None:
        """A control-plane machine started deploying or left (or is about to: excluded): a
        dns record follows."""
        if self.follows_machines:
            await self.ensure(exclude_system_ids, announce=announce)

    async def remove(self) -> RemoveEndpointResult:
        """Release the VIP / delete the record; idempotent."""
        return await self.calls.run(
            REMOVE_ENDPOINT,
            RemoveEndpointInput(account=self.cluster.account, cluster_id=self.cluster.cluster_id),
            RemoveEndpointResult,
        )
