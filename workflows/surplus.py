"""Release machines MAAS has marked for a cluster that the workflow does not know of.

A late attempt of an acquire (a gateway replica paused past its timeout) fences itself, but
if it allocated before it noticed, MAAS holds machines no answer reached the workflow with.
After each acquire the saga compares and gives those back instead of keeping them idle.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import ClusterRef
    from workflows.gateway_calls import GatewayCalls

PATCH_RELEASE_SURPLUS = "release-surplus-after-acquire"
# MAAS keeps a machine owned until it is Ready again; these are on their way out already.
RELEASING_STATUSES = frozenset({"Releasing", "Disk erasing"})


async def release_surplus(
    calls: GatewayCalls,
    cluster: ClusterRef,
    known: set[str],
    why: str = "taken by a superseded acquire attempt",
) -> list[str]:
    """Release what MAAS lists as the cluster's beyond `known`; answers the system ids."""
    owned = await calls.find_owned(cluster)
    surplus = sorted(
        m.system_id
        for m in owned.machines
        if m.system_id not in known and m.status not in RELEASING_STATUSES
    )
    if not surplus:
        return []
    await calls.release(
        cluster, surplus, f"metalgate: surplus of cluster {cluster.cluster_id} ({why})"
    )
    await calls.status.event(
        f"released {len(surplus)} surplus machine(s) MAAS had marked for the cluster "
        f"({', '.join(surplus)}): {why}"
    )
    return surplus
