"""Routes the cluster agent calls, authenticated by the per-cluster agent token only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.service import RPCError, RPCStatusCode

from api.agent_cache import AgentCache
from api.agent_outbox import AgentOutboxSender
from api.agent_reports import first_control_plane, node_state, own_machine
from api.deps import (
    UNAUTHORIZED,
    AgentBearerDep,
    AgentClusterDep,
    BoxDep,
    SessionDep,
    SettingsDep,
)
from api.errors import FieldRefused, responses
from api.heartbeats import HeartbeatRecorder
from api.idempotency import idempotent_request, remember, replay
from api.temporal_gate import TemporalGate
from domain.agent_wire import (
    AgentAck,
    AgentCommand,
    AgentCommandList,
    AgentHeartbeat,
    AgentStatusReport,
    CommandResult,
)
from domain.cluster import ClusterSpec
from domain.naming import SIGNAL_COMMAND_RESULT, manage_workflow_id
from domain.phases import MANAGED_PHASES, TERMINAL_PHASES, Phase
from store.agent_outbox import fingerprint, record_change
from store.models import AgentCommandRow, AgentNode, Cluster
from store.secrets import SecretBox, hash_token
from store.types import utcnow
from workflows.contracts import CommandResultSignal

router = APIRouter(prefix="/v1/agent", tags=["agent"])

OPEN_COMMAND_STATES = ("pending", "running")


AGENT_SECURITY: dict[str, Any] = {"security": [{"AgentToken": []}]}
ACK_UNCHANGED = b'{"ok":true,"signalled":false}'
ACK_SIGNALLED = b'{"ok":true,"signalled":true}'


def _missing_token() -> HTTPException:
    return HTTPException(
        401, "missing credentials: send `Authorization: Bearer <agent token>`", UNAUTHORIZED
    )


def _bearer_token(request: Request) -> str:
    """The agent token from `Authorization: Bearer ...`, parsed without a dependency."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _missing_token()
    return token


def _ack(signalled: bool) -> Response:
    return Response(ACK_SIGNALLED if signalled else ACK_UNCHANGED, media_type="application/json")


async def _report(
    request: Request,
    session: AsyncSession,
    token: str,
    beat: AgentHeartbeat,
    kubeconfig: tuple[str, SecretBox] | None = None,
) -> bool:
    """The slow path, the store's word: one SELECT; on change, store it for the outbox sender.

    True when it was a change (queued to be signalled). Updates this replica's agent cache as it goes. A node
    that is not one of the cluster's machines is refused before anything is stored.
    """
    cache: AgentCache = request.app.state.agent_cache
    heartbeats: HeartbeatRecorder = request.app.state.heartbeats
    token_hash = hash_token(token)
    hostname = beat.node.hostname
    row = (
        await session.execute(
            select(
                Cluster.id,
                Cluster.phase,
                Cluster.silent,
                Cluster.machines,
                AgentNode.fingerprint,
            )
            .outerjoin(
                AgentNode, and_(AgentNode.cluster_id == Cluster.id, AgentNode.hostname == hostname)
            )
            .where(Cluster.agent_token_hash == token_hash)
        )
    ).first()
    if row is None:
        cache.forget(token_hash)
        raise HTTPException(401, "invalid or revoked agent token", UNAUTHORIZED)
    cluster_id, phase, silent, machines, known = row
    heartbeats.seen(cluster_id, hostname)
    own_machine(beat.node, machines, Phase(phase))
    if kubeconfig is not None:
        await session.commit()  # end the read snapshot: SQLite refuses to upgrade a stale one
        await _accept_kubeconfig(session, cluster_id, beat, *kubeconfig)
    state = node_state(beat)
    current = fingerprint(state)
    if current == known and not silent:
        cache.remember(token_hash, hostname, current)  # the store agrees: nothing changed
        return False
    if Phase(phase) in TERMINAL_PHASES:
        return False
    # A change: stored with its cluster's outbox row in one short transaction. The outbox
    # sender signals it (api/agent_outbox.py): no lock or connection is held across Temporal.
    await session.commit()  # end the read snapshot: SQLite refuses to upgrade a stale one
    now = utcnow()
    await record_change(
        session,
        cluster_id=cluster_id,
        hostname=hostname,
        fingerprint=current,
        state=state,
        now=now,
    )
    if silent:
        # Cleared at once (not via the batch) so the next sweep does not call it silent again.
        await session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id)
            .values(silent=False, last_heartbeat_at=now)
        )
    await session.commit()
    cache.remember(token_hash, hostname, current)
    outbox: AgentOutboxSender = request.app.state.agent_outbox
    outbox.nudge()
    return True


@router.post(
    "/heartbeat", response_model=AgentAck, responses=responses(), openapi_extra=AGENT_SECURITY
)
async def heartbeat(beat: AgentHeartbeat, request: Request) -> Response:
    """Cheap at fleet scale: recorded in a batch; signals a workflow only when state changed.

    The unchanged heartbeat of a cached token (see `api.agent_cache`) opens no store session:
    its last-seen time goes to the batch flush. Anything else takes the slow path.
    """
    token = _bearer_token(request)
    cache: AgentCache = request.app.state.agent_cache
    token_hash = hash_token(token)
    entry = cache.get(token_hash)
    if entry is None:
        entry = await cache.load(request.app.state.db.sessions, token_hash)
        if entry is None:
            raise HTTPException(401, "invalid or revoked agent token", UNAUTHORIZED)
    if not entry.silent and entry.fingerprints.get(beat.node.hostname) == fingerprint(
        node_state(beat)
    ):
        request.app.state.heartbeats.seen(entry.cluster_id, beat.node.hostname)
        return _ack(False)
    async with request.app.state.db.sessions() as session:
        return _ack(await _report(request, session, token, beat))


@router.post("/status", response_model=AgentAck, responses=responses(409, 422, 425))
async def status(
    report: AgentStatusReport,
    request: Request,
    session: SessionDep,
    credentials: AgentBearerDep,
    box: BoxDep,
) -> AgentAck:
    """A change report; the first control-plane node attaches the kubeconfig (stored encrypted)."""
    if credentials is None or not credentials.credentials:
        raise _missing_token()
    kubeconfig = (report.kubeconfig, box) if report.kubeconfig else None
    beat = AgentHeartbeat.model_validate(report.model_dump(exclude={"kubeconfig"}))
    signalled = await _report(request, session, credentials.credentials, beat, kubeconfig)
    return AgentAck(signalled=signalled)


async def _accept_kubeconfig(
    session: AsyncSession, cluster_id: str, beat: AgentHeartbeat, kubeconfig: str, box: SecretBox
) -> None:
    """Once, from the first control-plane machine, before Running and before any delete."""
    cluster = await session.get(Cluster, cluster_id, with_for_update=True)
    assert cluster is not None  # the token matched it a moment ago
    phase = Phase(cluster.phase)
    if cluster.delete_requested_at is not None or phase in (Phase.DELETING, Phase.DELETED):
        raise FieldRefused(
            "body.kubeconfig", "the cluster is being deleted; a kubeconfig is not accepted", 409
        )
    if cluster.kubeconfig_enc is not None:
        if box.decrypt(cluster.kubeconfig_enc) == kubeconfig:
            return  # the same post again (its answer was lost)
        raise FieldRefused(
            "body.kubeconfig",
            "this cluster's kubeconfig was accepted already; it is sent once",
            409,
        )
    if phase in MANAGED_PHASES or phase in TERMINAL_PHASES:
        raise FieldRefused(
            "body.kubeconfig", f"the cluster is {phase}; it is accepted only before Running", 409
        )
    control_plane = ClusterSpec.model_validate(cluster.spec).control_plane.name
    first = first_control_plane(cluster.machines, control_plane)
    if first is None or first.hostname != beat.node.hostname:
        raise FieldRefused(
            "body.kubeconfig",
            "only the first control-plane machine "
            f"({first.hostname if first else 'not recorded yet'}) sends the kubeconfig; "
            "remove it from this node's report",
        )
    cluster.kubeconfig_enc = box.encrypt(kubeconfig)
    await session.commit()


@router.get("/commands", response_model=AgentCommandList, responses=responses())
async def pending_commands(
    cluster: AgentClusterDep,
    session: SessionDep,
    node: Annotated[
        str | None,
        Query(max_length=255, description="the asking agent's hostname; omitted: all commands"),
    ] = None,
) -> AgentCommandList:
    """The cluster's open commands; with `node`, those that node's agent runs. Every
    control-plane agent asks: a command naming a runner is that node's, any other goes to
    the first control-plane machine the cluster records, so when a repave or remediation
    replaces it the next one takes over."""
    rows = await session.scalars(
        select(AgentCommandRow)
        .where(
            AgentCommandRow.cluster_id == cluster.id, AgentCommandRow.state.in_(OPEN_COMMAND_STATES)
        )
        .order_by(AgentCommandRow.created_at)
    )
    commands = [AgentCommand(id=c.id, kind=c.kind, args=c.args) for c in rows.all()]
    if node is not None:
        control_plane = ClusterSpec.model_validate(cluster.spec).control_plane.name
        first = first_control_plane(cluster.machines, control_plane)
        default = first.hostname if first is not None else None
        commands = [c for c in commands if c.runs_on(node, default)]
    return AgentCommandList(commands=commands)


@router.post("/commands/{command_id}", response_model=AgentAck, responses=responses(422, 503))
async def command_result(
    command_id: Annotated[str, Path(max_length=128)],
    result: CommandResult,
    cluster: AgentClusterDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> AgentAck | Response:
    """Progress or outcome of a command: stored, and signalled to the management workflow.

    A post retried with the same `Idempotency-Key` gets the first answer and signals nothing.
    """
    idem = idempotent_request(request, f"agent:{cluster.id}:{command_id}", result)
    earlier = await replay(session, idem)
    if earlier is not None:
        return earlier
    command = await session.get(AgentCommandRow, command_id)
    if command is None or command.cluster_id != cluster.id:
        raise HTTPException(404, f"no command {command_id!r} for this cluster")
    if command.state not in OPEN_COMMAND_STATES:
        return AgentAck(signalled=False)
    signal = CommandResultSignal(command_id=command_id, **result.model_dump())
    signalled = await _signal_command(request.app.state.temporal, cluster.id, signal)
    command.state = result.state
    command.node = result.node[:255]
    command.progress = result.progress
    command.message = result.message
    command.updated_at = utcnow()
    await session.commit()
    answer = AgentAck(signalled=signalled)
    await remember(session, idem, answer, settings.idempotency_key_ttl_seconds)
    return answer


async def _signal_command(gate: TemporalGate, cluster_id: str, signal: CommandResultSignal) -> bool:
    """False when management is gone; 503 when Temporal is down, so the agent retries."""
    client: Any = await gate.client()
    try:
        await client.get_workflow_handle(manage_workflow_id(cluster_id)).signal(
            SIGNAL_COMMAND_RESULT, signal
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
