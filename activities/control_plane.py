"""Control-plane activities: the only writers of lifecycle state in the store.

They run on the `control-plane` queue. Each is idempotent, because Temporal retries them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import (
    CLUSTER_CLAIMS,
    ENQUEUE_AGENT_COMMAND,
    ISSUE_AGENT_TOKEN,
    RECORD_STATUS,
    RENDER_CLOUD_INIT,
    REVOKE_AGENT_TOKEN,
    STOP_CLUSTER_WORKFLOWS,
    SWEEP_SILENT_AGENTS,
    AgentTokenResult,
    ClusterClaimsInput,
    ClusterClaimsResult,
    EnqueueAgentCommandInput,
    IssueAgentTokenInput,
    RecordStatusInput,
    RenderCloudInitInput,
    RenderCloudInitResult,
    RevokeAgentTokenInput,
    StopClusterWorkflowsInput,
    SweepSilentAgentsInput,
    SweepSilentAgentsResult,
)
from activities.node_bootstrap import NodeBootstrapRenderer
from activities.orphans import claims
from domain.conditions import apply_status, read_conditions
from domain.lifecycle import AgentSilent
from domain.naming import SIGNAL_AGENT_SILENT, SIGNAL_STOP, create_workflow_id, manage_workflow_id
from domain.phases import MANAGED_PHASES, Phase, Reason
from runtime.settings import Settings, installation_id
from store.bootstrap_material import BootstrapMaterialStore
from store.db import SessionFactory
from store.models import AgentCommandRow, Cluster, ClusterEvent
from store.node_silence import mark_silent_nodes
from store.secrets import SecretBox, hash_token, new_token
from store.types import utcnow

log = logging.getLogger(__name__)

# Management has nothing to compensate: a delete does not wait longer than this for it.
MANAGE_TERMINATE_SECONDS = 120.0

# Forward-only ordering. Managed phases share a rank: a running cluster moves freely
# between Running, Upgrading, Scaling, Repaving and Unreachable. Failed outranks every
# create phase, so a late create write never revives a failed cluster, and Deleting
# outranks Failed, so a failed cluster can still be deleted.
_CREATE_RANK = {
    Phase.PENDING: 0,
    Phase.ACQUIRING_MACHINES: 1,
    Phase.DEPLOYING_OS: 2,
    Phase.BOOTSTRAPPING_CONTROL_PLANE: 3,
    Phase.JOINING_NODES: 4,
}
_LATE_RANK = {Phase.FAILED: 6, Phase.DELETING: 7, Phase.DELETED: 8}


def phase_rank(phase: Phase) -> int:
    if phase in MANAGED_PHASES:
        return 5
    return _CREATE_RANK.get(phase, _LATE_RANK.get(phase, 0))


def is_forward(current: Phase, new: Phase) -> bool:
    """May a cluster in `current` be recorded as `new`? Same-rank writes update reasons."""
    return phase_rank(new) >= phase_rank(current)


class ControlPlaneActivities:
    """Activities with their clients handed in, so tests can give them their own."""

    def __init__(self, sessions: SessionFactory, client: Client, settings: Settings) -> None:
        self._sessions = sessions
        self._client = client
        self._settings = settings
        self._bootstrap = NodeBootstrapRenderer(
            sessions, BootstrapMaterialStore(sessions, SecretBox.from_settings(settings)), settings
        )

    @activity.defn(name=RECORD_STATUS)
    async def record_status(self, inp: RecordStatusInput) -> None:
        """Forward-only, idempotent upsert of phase, reason and machines, plus the event log."""
        async with self._sessions.begin() as session:
            cluster = await session.get(Cluster, inp.cluster_id, with_for_update=True)
            if cluster is None:
                raise ApplicationError(
                    f"cluster {inp.cluster_id} is not in the store",
                    type=Reason.CLUSTER_NOT_FOUND.value,
                    non_retryable=True,
                )
            current = Phase(cluster.phase)
            if not is_forward(current, inp.phase):
                log.info(
                    "cluster %s: ignoring backward status %s (is %s)",
                    inp.cluster_id,
                    inp.phase,
                    current,
                )
                return
            now = utcnow()
            cluster.phase = inp.phase.value
            # GatewayRevoked is set by the revoke route, not by a gate: it stays until the
            # cluster's account is moved to another gateway, whatever the workflows write.
            if cluster.reason != Reason.GATEWAY_REVOKED.value:
                cluster.reason = inp.reason.value if inp.reason else None
                cluster.message = inp.message
            conditions = apply_status(
                read_conditions(list(cluster.conditions)),
                inp.phase,
                inp.reason,
                inp.message,
                now.isoformat(),
            )
            cluster.conditions = [c.model_dump(mode="json") for c in conditions]
            if inp.machines is not None:
                cluster.machines = [m.model_dump(mode="json") for m in inp.machines]
            if inp.kubernetes_version:
                cluster.kubernetes_version = inp.kubernetes_version
            if inp.phase == Phase.DELETED:
                cluster.active_name = None
            cluster.updated_at = now
            if inp.event:
                await self._append_event(session, inp)

    async def _append_event(self, session: Any, inp: RecordStatusInput) -> None:
        # A retried activity must not log its event twice: skip it if it is the latest one.
        last = await session.scalar(
            select(ClusterEvent)
            .where(ClusterEvent.cluster_id == inp.cluster_id)
            .order_by(ClusterEvent.id.desc())
            .limit(1)
        )
        reason = inp.reason.value if inp.reason else None
        if last is not None and (last.message, last.phase, last.reason) == (
            inp.event,
            inp.phase.value,
            reason,
        ):
            return
        session.add(
            ClusterEvent(
                cluster_id=inp.cluster_id, phase=inp.phase.value, reason=reason, message=inp.event
            )
        )

    @activity.defn(name=ISSUE_AGENT_TOKEN)
    async def issue_agent_token(self, inp: IssueAgentTokenInput) -> AgentTokenResult:
        """A fresh token; only its hash is stored, so a retry simply replaces it.

        The create's first step, so it also fences a create that starts after a delete was
        requested (a reconciler or a repeated POST racing the DELETE): it fails here, before
        anything is taken in MAAS, and the delete's stop never has to catch it.
        """
        token = new_token("mga")
        async with self._sessions.begin() as session:
            cluster = await session.get(Cluster, inp.cluster_id, with_for_update=True)
            if cluster is None:
                raise ApplicationError(
                    f"cluster {inp.cluster_id} is not in the store",
                    type=Reason.CLUSTER_NOT_FOUND.value,
                    non_retryable=True,
                )
            if cluster.delete_requested_at is not None:
                raise ApplicationError(
                    f"cluster {inp.cluster_id}: a delete was requested before the create "
                    "began; nothing was taken",
                    type=Reason.CANCELLED.value,
                    non_retryable=True,
                )
            cluster.agent_token_hash = hash_token(token)
        return AgentTokenResult(token=token)

    @activity.defn(name=REVOKE_AGENT_TOKEN)
    async def revoke_agent_token(self, inp: RevokeAgentTokenInput) -> None:
        """The delete saga's last credential step: the agent token and the bootstrap material."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Cluster).where(Cluster.id == inp.cluster_id).values(agent_token_hash=None)
            )
        await self._bootstrap.drop(inp.cluster_id)

    @activity.defn(name=RENDER_CLOUD_INIT)
    async def render_cloud_init(self, inp: RenderCloudInitInput) -> RenderCloudInitResult:
        """The node's kubeadm cloud-init, from the cluster's shared bootstrap material."""
        return RenderCloudInitResult(user_data=await self._bootstrap.render(inp))

    @activity.defn(name=ENQUEUE_AGENT_COMMAND)
    async def enqueue_agent_command(self, inp: EnqueueAgentCommandInput) -> None:
        """Insert once by command id; a retry leaves an existing command (and its progress) alone."""
        async with self._sessions.begin() as session:
            if await session.get(AgentCommandRow, inp.command_id) is not None:
                return
            session.add(
                AgentCommandRow(
                    id=inp.command_id, cluster_id=inp.cluster_id, kind=inp.kind, args=inp.args
                )
            )

    @activity.defn(name=STOP_CLUSTER_WORKFLOWS)
    async def stop_cluster_workflows(self, inp: StopClusterWorkflowsInput) -> None:
        """Cancel create, ask management to stop (cancel it if it lingers), wait until closed.

        A workflow that cannot go on (its task failing in a loop, or nobody running it)
        never closes by itself: it is terminated (management after at most two minutes, as
        it has nothing to clean up; create after `wait_seconds`, as its compensation may
        take long) and the cluster's events say so: the delete releases by ownership anyway.
        """
        create = self._client.get_workflow_handle(create_workflow_id(inp.cluster_id))
        manage = self._client.get_workflow_handle(manage_workflow_id(inp.cluster_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + inp.wait_seconds
        manage_cancel_at = loop.time() + min(30.0, inp.wait_seconds / 2)
        manage_terminate_at = loop.time() + min(MANAGE_TERMINATE_SECONDS, inp.wait_seconds)
        cancelled_run: str | None = None
        manage_stopped = manage_cancelled = False
        while True:
            create_run, manage_open = await _open_run(create), await _open_run(manage) is not None
            create_open = create_run is not None
            if not create_open and not manage_open:
                return
            activity.heartbeat(f"create open={create_open} manage open={manage_open}")
            # Looked at every round, not only the first: a create may start after the first
            # look (a start the API sent while Temporal was down lands late, or a reconciler
            # round races the DELETE), and only a cancel makes it compensate.
            if create_run is not None and create_run != cancelled_run:
                await _ignore_not_found(create.cancel())
                cancelled_run = create_run
            if manage_open and not manage_stopped:
                await _ignore_not_found(manage.signal(SIGNAL_STOP))
                manage_stopped = True
            if manage_open and not manage_cancelled and loop.time() > manage_cancel_at:
                await _ignore_not_found(manage.cancel())
                manage_cancelled = True
            if manage_open and loop.time() > manage_terminate_at:
                await self._terminate(inp, manage, min(MANAGE_TERMINATE_SECONDS, inp.wait_seconds))
            if create_open and loop.time() > deadline:
                await self._terminate(inp, create, inp.wait_seconds)
            await asyncio.sleep(1.0)

    async def _terminate(self, inp: StopClusterWorkflowsInput, handle: Any, after: float) -> None:
        why = (
            f"{handle.id} did not close within {after:.0f}s of the delete's stop "
            "request (its task may be failing); terminated so the delete can go on"
        )
        await _ignore_not_found(handle.terminate(reason=why))
        log.warning("cluster %s: %s", inp.cluster_id, why)
        async with self._sessions.begin() as session:
            cluster = await session.get(Cluster, inp.cluster_id)
            session.add(
                ClusterEvent(
                    cluster_id=inp.cluster_id,
                    phase=cluster.phase if cluster else None,
                    reason=Reason.WORKFLOW_TERMINATED.value,
                    message=why,
                )
            )

    @activity.defn(name=SWEEP_SILENT_AGENTS)
    async def sweep_silent_agents(self, inp: SweepSilentAgentsInput) -> SweepSilentAgentsResult:
        """One indexed query for newly silent clusters; each is signalled, then marked silent.

        Then one for nodes whose own agent went silent in clusters still heard from: each is
        marked not Ready and queued through the agent outbox (store/node_silence.py)."""
        cutoff = utcnow() - timedelta(seconds=inp.silence_seconds)
        watched = [p.value for p in MANAGED_PHASES if p != Phase.UNREACHABLE]
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Cluster.id, Cluster.last_heartbeat_at, Cluster.updated_at).where(
                        Cluster.silent.is_(False),
                        Cluster.phase.in_(watched),
                        or_(
                            Cluster.last_heartbeat_at < cutoff,
                            and_(Cluster.last_heartbeat_at.is_(None), Cluster.updated_at < cutoff),
                        ),
                    )
                )
            ).all()
        signalled: list[str] = []
        for cluster_id, last_heartbeat, updated in rows:
            last_seen = (last_heartbeat or updated).timestamp()
            handle = self._client.get_workflow_handle(manage_workflow_id(cluster_id))
            try:
                await handle.signal(SIGNAL_AGENT_SILENT, AgentSilent(last_seen_unix=last_seen))
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                log.warning("cluster %s looks silent but has no management workflow", cluster_id)
                continue
            # Marked only after the signal went through, so a failed signal is retried next sweep.
            async with self._sessions.begin() as session:
                await session.execute(
                    update(Cluster).where(Cluster.id == cluster_id).values(silent=True)
                )
            signalled.append(cluster_id)
        node_cutoff = utcnow() - timedelta(seconds=inp.node_silence_seconds)
        marked = await mark_silent_nodes(self._sessions, cutoff=node_cutoff, phases=watched)
        for node in marked:
            log.warning(
                "cluster %s: the agent of %s is silent since %s%s",
                node.cluster_id,
                node.hostname,
                node.last_seen_at.isoformat(timespec="seconds"),
                "" if node.queued else " (no longer one of its machines)",
            )
        return SweepSilentAgentsResult(
            signalled=signalled,
            silent_nodes=[f"{n.cluster_id}/{n.hostname}" for n in marked if n.queued],
        )

    @activity.defn(name=CLUSTER_CLAIMS)
    async def cluster_claims(self, inp: ClusterClaimsInput) -> ClusterClaimsResult:
        """What the orphan sweeper must leave alone; see activities.orphans.claims."""
        return await claims(self._sessions, self._client, installation_id(self._settings), inp)

    def all(self) -> list[Any]:
        """Every activity of this class, for a worker's `activities=`."""
        return [
            self.record_status,
            self.issue_agent_token,
            self.revoke_agent_token,
            self.render_cloud_init,
            self.enqueue_agent_command,
            self.stop_cluster_workflows,
            self.sweep_silent_agents,
            self.cluster_claims,
        ]


async def _open_run(handle: Any) -> str | None:
    """The run id of the handle's workflow if it is running, else None."""
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return (
        str(description.run_id) if description.status == WorkflowExecutionStatus.RUNNING else None
    )


async def _ignore_not_found(call: Any) -> None:
    try:
        await call
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
