"""The reconciler's activity: the store's clusters against their workflows in Temporal.

A cluster row can outlive its saga: the API stored it while Temporal was down (Pending, no
create), an operator terminated a create (its machines stay claimed), or a delete ended
without finishing. Each run finds such clusters and (re)starts the saga their phase asks
for; the saga itself is idempotent (acquire adopts what a request holds, delete releases
by ownership), so starting it again resumes rather than repeats. What it did goes into the
cluster's events.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import (
    RECONCILE_CLUSTERS,
    ReconcileClustersInput,
    ReconcileClustersResult,
)
from domain.lifecycle import (
    ClusterRef,
    CreateClusterInput,
    DeleteClusterInput,
)
from domain.naming import (
    CREATE_WORKFLOW,
    DELETE_WORKFLOW,
    create_workflow_id,
    delete_workflow_id,
)
from domain.phases import CREATE_PHASES, Phase, Reason
from runtime.settings import Settings, installation_id
from store.cluster_refs import ClusterPartGone, cluster_ref
from store.db import SessionFactory
from store.models import Cluster, ClusterEvent
from store.secrets import SecretBox
from store.types import utcnow

log = logging.getLogger(__name__)

# Closed without deciding the cluster's fate: the saga must run again.
ABANDONED = frozenset(
    {
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.FAILED,
    }
)
CREATING = [p.value for p in CREATE_PHASES if p != Phase.RUNNING]


class ReconcileActivities:
    def __init__(
        self, sessions: SessionFactory, client: Client, settings: Settings, box: SecretBox
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._settings = settings
        self._box = box

    @activity.defn(name=RECONCILE_CLUSTERS)
    async def reconcile_clusters(self, inp: ReconcileClustersInput) -> ReconcileClustersResult:
        """Start the create or delete each stranded cluster needs; answers what it did."""
        settled_before = utcnow() - timedelta(seconds=inp.min_age_seconds)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Cluster)
                    .where(
                        Cluster.updated_at < settled_before,
                        or_(
                            Cluster.phase.in_(CREATING),
                            Cluster.phase == Phase.DELETING.value,
                            Cluster.delete_requested_at.is_not(None)
                            & (Cluster.phase != Phase.DELETED.value),
                        ),
                    )
                    .order_by(Cluster.updated_at)
                    .limit(inp.limit)
                )
            ).all()
        result = ReconcileClustersResult()
        for cluster in rows:
            activity.heartbeat(cluster.id)
            deleting = cluster.delete_requested_at is not None or cluster.phase == "Deleting"
            workflow_id = (delete_workflow_id if deleting else create_workflow_id)(cluster.id)
            state = await self._state(workflow_id)
            if state == "open" or state == WorkflowExecutionStatus.COMPLETED.name.lower():
                continue
            if not deleting and state == WorkflowExecutionStatus.CANCELED.name.lower():
                continue  # a cancelled create compensated and recorded its end
            ref = await self._ref(cluster)
            if ref is None:
                continue
            started = await self._start(ref, deleting, inp.task_queue)
            if started:
                saga = "delete" if deleting else "create"
                line = (
                    f"reconciler: the {saga} workflow of this {cluster.phase} cluster was "
                    f"{state}; started it again"
                )
                await self._event(cluster, line)
                result.actions.append(f"{cluster.id}: {line}")
        return result

    async def _state(self, workflow_id: str) -> str:
        try:
            described = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return "missing"
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            return "open"
        return described.status.name.lower() if described.status else "unknown"

    async def _start(self, ref: ClusterRef, deleting: bool, task_queue: str) -> bool:
        timeouts = self._settings.lifecycle_timeouts()
        try:
            if deleting:
                await self._client.start_workflow(
                    DELETE_WORKFLOW,
                    DeleteClusterInput(cluster=ref, timeouts=timeouts),
                    id=delete_workflow_id(ref.cluster_id),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
            else:
                await self._client.start_workflow(
                    CREATE_WORKFLOW,
                    CreateClusterInput(
                        cluster=ref,
                        timeouts=timeouts,
                        silence_seconds=self._settings.agent_silence_timeout,
                    ),
                    id=create_workflow_id(ref.cluster_id),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def _ref(self, cluster: Cluster) -> ClusterRef | None:
        """What the saga needs, as the API builds it; None (logged) when a part is gone."""
        async with self._sessions() as session:
            try:
                return await cluster_ref(
                    session, self._box, cluster, installation_id=installation_id(self._settings)
                )
            except ClusterPartGone as err:
                log.warning("%s; not reconciled", err)
                return None

    async def _event(self, cluster: Cluster, line: str) -> None:
        log.warning("cluster %s: %s", cluster.id, line)
        async with self._sessions.begin() as session:
            session.add(
                ClusterEvent(
                    cluster_id=cluster.id,
                    phase=cluster.phase,
                    reason=Reason.RECONCILED.value,
                    message=line,
                )
            )

    def all(self) -> list[Any]:
        """Every activity of this class, for a worker's `activities=`."""
        return [self.reconcile_clusters]
