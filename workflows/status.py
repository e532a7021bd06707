"""Control-plane activity calls and the one place a workflow records cluster status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.models import RECORD_STATUS, RecordStatusInput
    from domain.lifecycle import ClusterRef, cluster_search_attributes
    from domain.maas import Machine
    from domain.naming import (
        SA_CLUSTER_PHASE,
        SA_CLUSTER_REASON,
    )
    from domain.phases import Phase, Reason

R = TypeVar("R")

CLUSTER_REASON_PATCH = "cluster-reason-search-attribute"
# A closing run leaves in ClusterPhase what the cluster became (see close_search_attributes).
CLOSED_PHASE_PATCH = "closed-phase-search-attribute"

# Control-plane activities only touch the store and Temporal: a failure is transient (the
# store restarting, a deploy), so they retry until they succeed, visibly pending in the UI.
CONTROL_PLANE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


async def control_plane_call(
    activity: str,
    arg: BaseModel,
    result_type: type[R] | None = None,
    *,
    start_to_close: float = 30.0,
    heartbeat: float | None = None,
    retry: RetryPolicy = CONTROL_PLANE_RETRY,
) -> R:
    """Run a control-plane activity.

    No task queue is given: control-plane activities run on the queue the workflow runs on,
    which is CONTROL_PLANE_QUEUE in production and a private queue in tests.
    """
    result: Any = await workflow.execute_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=start_to_close),
        heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
        retry_policy=retry,
    )
    return result


def spec_summary(cluster: ClusterRef) -> dict[str, Any]:
    """Memo shown in the Temporal UI: the cluster's shape at a glance, never a secret."""
    spec = cluster.spec
    return {
        "cluster": spec.name,
        "kubernetes_version": spec.kubernetes_version,
        "pools": {p.name: p.count for p in spec.pools},
        "gateway": cluster.gateway.name,
        "maas": cluster.account.url,
    }


def annotate(cluster: ClusterRef, phase: Phase) -> None:
    """Set search attributes and memo, in case the starter did not (schedules, old clients)."""
    workflow.upsert_search_attributes(
        [pair.key.value_set(pair.value) for pair in cluster_search_attributes(cluster, phase)]
    )
    workflow.upsert_memo({"spec": spec_summary(cluster)})


def close_search_attributes(phase: Phase | None) -> bool:
    """Before a run closes: its search attributes never change again, so they say what the
    cluster became (Deleted), or, for a run that hands the cluster to another (create to
    management, continue-as-new), no phase at all, so a closed run never claims Running.
    False when the run's history predates this (nothing was changed)."""
    if not workflow.patched(CLOSED_PHASE_PATCH):
        return False
    workflow.upsert_search_attributes(
        [
            SA_CLUSTER_PHASE.value_set(phase.value) if phase else SA_CLUSTER_PHASE.value_unset(),
            SA_CLUSTER_REASON.value_unset(),
        ]
    )
    return True


class StatusRecorder:
    """Records phase and reason through RECORD_STATUS, the ClusterPhase search attribute, logs.

    Writes are serialised by a lock: parallel branches (one per machine) may record, and the
    store must see them in the order the workflow decided them.
    """

    def __init__(self, cluster_id: str, phase: Phase) -> None:
        self.cluster_id = cluster_id
        self.phase = phase
        self.reason: Reason | None = None
        self.message = ""
        self._lock = asyncio.Lock()
        self._before_gateway_wait: tuple[Reason | None, str] | None = None

    def search_attributes(self, cluster: ClusterRef) -> TypedSearchAttributes:
        """All of the cluster's search attributes as recorded now, for a run started next."""
        pairs = list(cluster_search_attributes(cluster, self.phase))
        if self.reason:
            pairs.append(SearchAttributePair(SA_CLUSTER_REASON, self.reason.value))
        return TypedSearchAttributes(pairs)

    async def set(
        self,
        phase: Phase,
        *,
        reason: Reason | None = None,
        message: str = "",
        machines: list[Machine] | None = None,
        kubernetes_version: str | None = None,
        event: str | None = None,
    ) -> None:
        """Move to `phase`; a new decision replaces any gateway wait shown before it."""
        self._before_gateway_wait = None
        await self._write(phase, reason, message, machines, kubernetes_version, event)

    async def event(self, line: str, **changes: Any) -> None:
        """Record an event (and machine or version changes) without changing phase or reason."""
        await self._write(self.phase, self.reason, self.message, event=line, **changes)

    async def waiting_for_gateway(self, gateway_name: str) -> None:
        if self._before_gateway_wait is not None:
            return
        self._before_gateway_wait = (self.reason, self.message)
        message = f"waiting for gateway {gateway_name}"
        await self._write(
            self.phase,
            Reason.WAITING_FOR_GATEWAY,
            message,
            # Schedule-to-start cannot tell a stopped gateway from one with a long backlog.
            event=f"{message}: no worker of it took the task in time (stopped, cut off or busy)",
        )

    async def gateway_back(self, gateway_name: str) -> None:
        if self._before_gateway_wait is None:
            return
        reason, message = self._before_gateway_wait
        self._before_gateway_wait = None
        await self._write(self.phase, reason, message, event=f"gateway {gateway_name} is back")

    async def _write(
        self,
        phase: Phase,
        reason: Reason | None,
        message: str,
        machines: list[Machine] | None = None,
        kubernetes_version: str | None = None,
        event: str | None = None,
    ) -> None:
        async with self._lock:
            if phase != self.phase:
                workflow.logger.info(
                    "cluster %s: %s -> %s %s", self.cluster_id, self.phase, phase, reason or ""
                )
            self.phase, self.reason, self.message = phase, reason, message
            updates: list[SearchAttributeUpdate[Any]] = [SA_CLUSTER_PHASE.value_set(phase.value)]
            # One upsert command either way, so histories recorded before keep replaying.
            if workflow.patched(CLUSTER_REASON_PATCH):
                updates.append(
                    SA_CLUSTER_REASON.value_set(reason.value)
                    if reason
                    else SA_CLUSTER_REASON.value_unset()
                )
            workflow.upsert_search_attributes(updates)
            if event:
                workflow.logger.info("cluster %s: %s", self.cluster_id, event)
            await control_plane_call(
                RECORD_STATUS,
                RecordStatusInput(
                    cluster_id=self.cluster_id,
                    phase=phase,
                    reason=reason,
                    message=message,
                    machines=machines,
                    kubernetes_version=kubernetes_version,
                    event=event,
                ),
            )


def cancel_requested() -> bool:
    """Whether this workflow was asked to cancel, whatever error surfaced first: the cancel
    reaches parallel activities together, and one that fails in the same moment (a MAAS
    error, a lost heartbeat) makes gather raise its error instead of the cancel."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def run_to_completion(work: Awaitable[R]) -> R:
    """Await `work` to the end even if the workflow is cancelled meanwhile (compensation)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            workflow.logger.warning("cancel requested during cleanup; finishing cleanup first")
    return task.result()


async def gather_cancelling(*works: Awaitable[R]) -> list[R]:
    """Like gather, but the first failure cancels the siblings and waits until they stopped,
    so no activity outlives the branch that compensates for it."""
    tasks = [asyncio.ensure_future(w) for w in works]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
