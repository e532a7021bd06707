"""Clusters: the API writes intent (spec, delete request) and drives workflows; it never
writes lifecycle state, which only the workflows' activities record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.capacity_plans import plan_pools
from api.deps import BoxDep, Editor, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import FieldRefused, responses
from api.idempotency import idempotent_request, remember, replay
from api.routes.accounts import project_account
from api.schemas.clusters import (
    ClusterCreate,
    ClusterEventList,
    ClusterEventPublic,
    ClusterList,
    ClusterPublic,
    ConditionPublic,
    KubeconfigPublic,
    NodeList,
    NodePublic,
    PoolStatus,
)
from api.temporal_gate import bounded
from api.workflow_errors import failure_http_error
from domain.agent_wire import NodeReport
from domain.capacity_plan import CapacityPlan, by_zone
from domain.cluster import ClusterSpec
from domain.conditions import read_conditions
from domain.lifecycle import (
    ClusterRef,
    CreateClusterInput,
    DeleteClusterInput,
    GatewayRef,
    cluster_search_attributes,
)
from domain.maas import Machine
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    CREATE_WORKFLOW,
    DELETE_WORKFLOW,
    QUERY_STATE,
    SIGNAL_FORCE_DELETE,
    UPDATE_CORDON,
    UPDATE_DRAIN,
    UPDATE_PAUSE,
    UPDATE_REPAVE,
    UPDATE_RESUME,
    UPDATE_SCALE,
    UPDATE_UNCORDON,
    UPDATE_UPGRADE,
    create_workflow_id,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import MANAGED_PHASES, REASON_HINTS, Phase, Reason
from domain.remediation import ObservedNode
from domain.text import HOSTNAME_PATTERN, MAX_HOSTNAME
from runtime.settings import Settings, installation_id
from store.cluster_refs import ClusterPartGone
from store.cluster_refs import cluster_ref as stored_cluster_ref
from store.cluster_refs import gateway_ref as stored_gateway_ref
from store.models import AgentNode, CloudAccount, Cluster, ClusterEvent
from store.secrets import SecretBox, maas_account, new_id
from store.types import utcnow
from workflows.contracts import (
    ActionAccepted,
    NodeRequest,
    RepaveRequest,
    ScaleRequest,
    UpgradeRequest,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/clusters", tags=["clusters"])

UPDATE_TIMEOUT_SECONDS = 15.0


def workflow_ui_url(settings: Settings, workflow_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    return (
        f"{base}/namespaces/{settings.temporal_namespace}/workflows/{quote(workflow_id, safe='')}"
    )


def current_workflow_id(cluster: Cluster) -> str:
    phase = Phase(cluster.phase)
    if phase in (Phase.DELETING, Phase.DELETED) or cluster.delete_requested_at is not None:
        return delete_workflow_id(cluster.id)
    if phase in MANAGED_PHASES:
        return manage_workflow_id(cluster.id)
    return create_workflow_id(cluster.id)


def pool_status(spec: ClusterSpec, machines: list[Machine]) -> list[PoolStatus]:
    """Each pool's size and spread over zones, from the machines the cluster holds."""
    return [
        PoolStatus(
            name=pool.name,
            role="control-plane" if pool is spec.control_plane else "worker",
            count=pool.count,
            machines=sum(1 for m in machines if m.pool == pool.name),
            zones=pool.constraints.zones,
            by_zone=by_zone([m.zone for m in machines if m.pool == pool.name]),
        )
        for pool in spec.pools
    ]


def cluster_public(
    cluster: Cluster, settings: Settings, nodes: list[ObservedNode] | None = None
) -> ClusterPublic:
    reason = Reason(cluster.reason) if cluster.reason else None
    spec = ClusterSpec.model_validate(cluster.spec)
    machines = [Machine.model_validate(m) for m in cluster.machines]
    return ClusterPublic(
        id=cluster.id,
        project_id=cluster.project_id,
        name=cluster.name,
        cloud_account_id=cluster.cloud_account_id,
        gateway_id=cluster.gateway_id,
        spec=spec,
        phase=Phase(cluster.phase),
        reason=reason,
        hint=REASON_HINTS.get(reason) if reason else None,
        message=cluster.message,
        conditions=[
            ConditionPublic.model_validate(c.model_dump())
            for c in read_conditions(cluster.conditions)
        ],
        machines=machines,
        pools=pool_status(spec, machines),
        nodes=nodes or [],
        kubernetes_version=cluster.kubernetes_version,
        agent_silent=cluster.silent,
        last_heartbeat_at=cluster.last_heartbeat_at,
        management_paused=cluster.management_paused_at is not None,
        management_paused_at=cluster.management_paused_at,
        create_workflow_id=create_workflow_id(cluster.id),
        delete_workflow_id=delete_workflow_id(cluster.id),
        manage_workflow_id=manage_workflow_id(cluster.id),
        temporal_ui_url=workflow_ui_url(settings, current_workflow_id(cluster)),
        create_workflow_ui_url=workflow_ui_url(settings, create_workflow_id(cluster.id)),
        created_at=cluster.created_at,
        updated_at=cluster.updated_at,
        delete_requested_at=cluster.delete_requested_at,
    )


async def project_cluster(session: SessionDep, project_id: str, cluster_id: str) -> Cluster:
    cluster = await session.get(Cluster, cluster_id)
    if cluster is None or cluster.project_id != project_id:
        raise HTTPException(404, f"no cluster {cluster_id!r} in this project; see GET /v1/clusters")
    return cluster


async def cluster_ref(
    session: SessionDep, box: SecretBox, cluster: Cluster, settings: Settings
) -> ClusterRef:
    """What a lifecycle workflow needs; 409 when its cloud account or gateway is gone."""
    try:
        return await stored_cluster_ref(
            session, box, cluster, installation_id=installation_id(settings)
        )
    except ClusterPartGone as err:
        raise HTTPException(409, str(err)) from err


async def account_gateway(session: SessionDep, account: CloudAccount, owner: str) -> GatewayRef:
    """The gateway that reaches the account's MAAS; `owner` names who asks, for the 409."""
    try:
        return await stored_gateway_ref(session, account, owner)
    except ClusterPartGone as err:
        raise HTTPException(409, str(err)) from err


async def start_create(client: Client, ref: ClusterRef, settings: Settings) -> None:
    """Start the create saga once: a retry joins the running one, a closed one is not redone."""
    try:
        await bounded(
            client.start_workflow(
                CREATE_WORKFLOW,
                CreateClusterInput(
                    cluster=ref,
                    timeouts=settings.lifecycle_timeouts(),
                    silence_seconds=settings.agent_silence_timeout,
                ),
                id=create_workflow_id(ref.cluster_id),
                task_queue=CONTROL_PLANE_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=cluster_search_attributes(ref, Phase.PENDING),
            )
        )
    except WorkflowAlreadyStartedError:
        log.info("cluster %s: create already ran", ref.cluster_id)


DryRun = Annotated[
    bool, Query(description="only plan: ask MAAS through the gateway, store and take nothing")
]
PLAN_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"model": CapacityPlan, "description": "dry_run=true: what MAAS would hand each pool"}
}


async def _plan_spec(
    request: Request,
    client: Client,
    session: SessionDep,
    box: SecretBox,
    project_id: str,
    account: CloudAccount,
    spec: ClusterSpec,
) -> CapacityPlan:
    gateway = await account_gateway(session, account, f"cloud account {account.name}")
    return await plan_pools(
        request, client, project_id, maas_account(account, box), gateway, spec.pools
    )


@router.post("/plan", response_model=CapacityPlan, responses=responses(409, 422, 503))
async def plan_cluster(
    body: ClusterCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
    request: Request,
) -> CapacityPlan:
    """Per pool, the machines MAAS would hand this spec or the constraint that fails, asked
    through the account's gateway; nothing is stored or taken. 503 names an offline gateway."""
    account = await project_account(session, principal.project_id, body.cloud_account_id)
    spec = body.spec()
    problem = settings.supported_versions().problem(spec.kubernetes_version)
    if problem is not None:
        raise FieldRefused("body.kubernetes_version", problem)
    return await _plan_spec(request, client, session, box, principal.project_id, account, spec)


@router.post(
    "",
    status_code=202,
    response_model=ClusterPublic,
    responses={**responses(409, 422, 503), **PLAN_ANSWER},
)
async def create_cluster(
    body: ClusterCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
    request: Request,
    dry_run: DryRun = False,
) -> ClusterPublic | JSONResponse:
    """Stores the spec as Pending, then starts the create saga. A retried call is harmless.
    With `dry_run=true` nothing is stored: the answer is the plan (as POST /v1/clusters/plan)."""
    account = await project_account(session, principal.project_id, body.cloud_account_id)
    spec = body.spec()
    problem = settings.supported_versions().problem(spec.kubernetes_version)
    if problem is not None:
        raise FieldRefused("body.kubernetes_version", problem)
    existing = await session.scalar(
        select(Cluster).where(
            Cluster.project_id == principal.project_id, Cluster.active_name == spec.name
        )
    )
    if dry_run:
        if existing is not None:
            raise HTTPException(
                409,
                f"name: a cluster named {spec.name!r} exists in this project; pick another name",
            )
        plan = await _plan_spec(request, client, session, box, principal.project_id, account, spec)
        return JSONResponse(plan.model_dump(mode="json"))
    if existing is not None:
        if existing.delete_requested_at is not None:
            raise HTTPException(
                409,
                f"name: the cluster named {spec.name!r} is being deleted; wait for its delete "
                "to finish (metalgate cluster delete --wait) or pick another name",
            )
        same_request = (
            existing.phase == Phase.PENDING.value
            and existing.cloud_account_id == account.id
            and ClusterSpec.model_validate(existing.spec) == spec
        )
        if not same_request:
            raise HTTPException(
                409,
                f"name: a cluster named {spec.name!r} exists in this project; pick another name",
            )
        # The same request again (e.g. the first answer was lost): make sure its saga runs.
        await start_create(client, await cluster_ref(session, box, existing, settings), settings)
        return cluster_public(existing, settings)
    cluster = Cluster(
        id=new_id("cl"),
        project_id=principal.project_id,
        name=spec.name,
        active_name=spec.name,
        cloud_account_id=account.id,
        gateway_id=account.gateway_id,
        spec=spec.model_dump(mode="json"),
        phase=Phase.PENDING.value,
        message="waiting for the create workflow",
        kubernetes_version=spec.kubernetes_version,
    )
    session.add(cluster)
    session.add(
        ClusterEvent(cluster_id=cluster.id, phase=Phase.PENDING.value, message="cluster accepted")
    )
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            409, f"name: a cluster named {spec.name!r} exists in this project; pick another name"
        ) from exc
    await start_create(client, await cluster_ref(session, box, cluster, settings), settings)
    return cluster_public(cluster, settings)


@router.get("", response_model=ClusterList, responses=responses())
async def list_clusters(
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    phase: Annotated[Phase | None, Query(description="only clusters in this phase")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ClusterList:
    where = [Cluster.project_id == principal.project_id]
    if phase is not None:
        where.append(Cluster.phase == phase.value)
    total = await session.scalar(select(func.count()).select_from(Cluster).where(*where)) or 0
    rows = await session.scalars(
        select(Cluster)
        .where(*where)
        .order_by(Cluster.created_at, Cluster.id)
        .limit(limit)
        .offset(offset)
    )
    return ClusterList(
        items=[cluster_public(c, settings) for c in rows.all()],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{cluster_id}", response_model=ClusterPublic, responses=responses())
async def get_cluster(
    cluster_id: str, principal: Viewer, session: SessionDep, settings: SettingsDep
) -> ClusterPublic:
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    reports = await session.scalars(
        select(AgentNode.report)
        .where(AgentNode.cluster_id == cluster.id)
        .order_by(AgentNode.hostname)
    )
    nodes = [ObservedNode.model_validate(report["node"]) for report in reports]
    return cluster_public(cluster, settings, nodes)


@router.delete(
    "/{cluster_id}", status_code=202, response_model=ClusterPublic, responses=responses(409, 503)
)
async def delete_cluster(
    cluster_id: str,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
    force: Annotated[
        bool,
        Query(
            description="finish a delete stuck for force_delete_after seconds without the "
            "gateway; what MAAS may still hold is listed and left to the orphan sweeper"
        ),
    ] = False,
) -> ClusterPublic:
    """Starts the delete saga (from any phase); deleting again joins or skips it."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    if cluster.phase == Phase.DELETED.value:
        return cluster_public(cluster, settings)
    ref = await cluster_ref(session, box, cluster, settings)
    if force:
        await _force_delete(session, settings, client, cluster, ref)
        return cluster_public(cluster, settings)
    if cluster.delete_requested_at is None:
        cluster.delete_requested_at = utcnow()
        # The cluster-admin credential is not served from here on: drop it.
        cluster.kubeconfig_enc = None
        session.add(
            ClusterEvent(
                cluster_id=cluster.id,
                phase=cluster.phase,
                message="delete requested; the admin kubeconfig is dropped",
            )
        )
        await session.commit()
    await bounded(
        client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=ref, timeouts=settings.lifecycle_timeouts()),
            id=delete_workflow_id(cluster.id),
            task_queue=CONTROL_PLANE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=cluster_search_attributes(ref, Phase.DELETING),
        )
    )
    return cluster_public(cluster, settings)


async def _force_delete(
    session: SessionDep, settings: Settings, client: Client, cluster: Cluster, ref: ClusterRef
) -> None:
    """Tell the delete saga to finish without the gateway (starting it again if it ended),
    once a normal delete has had `force_delete_after` seconds; 409 says when until then."""
    bound = timedelta(seconds=settings.force_delete_after)
    if cluster.delete_requested_at is None:
        raise HTTPException(
            409,
            f"force: cluster {cluster.name} has no delete to force; run DELETE without "
            f"force first; force is allowed {bound.total_seconds():.0f}s later if it has "
            "not finished by then (setting force_delete_after)",
        )
    allowed_at = cluster.delete_requested_at + bound
    now = utcnow()
    if now < allowed_at:
        raise HTTPException(
            409,
            f"force: the delete of cluster {cluster.name} started at "
            f"{cluster.delete_requested_at.isoformat()}; force is allowed from "
            f"{allowed_at.isoformat()} (in {(allowed_at - now).total_seconds():.0f}s) if it "
            "has not finished by then (setting force_delete_after)",
        )
    session.add(
        ClusterEvent(
            cluster_id=cluster.id,
            phase=cluster.phase,
            message="force delete requested: the delete finishes without the gateway",
        )
    )
    await session.commit()
    await bounded(
        client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=ref, timeouts=settings.lifecycle_timeouts()),
            id=delete_workflow_id(cluster.id),
            task_queue=CONTROL_PLANE_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=cluster_search_attributes(ref, Phase.DELETING),
            # Signal-with-start: a running delete is told to finish; an ended one (failed,
            # say, after waiting a day for the gateway) starts again and finishes at once.
            start_signal=SIGNAL_FORCE_DELETE,
        )
    )


@router.get(
    "/{cluster_id}/kubeconfig", response_model=KubeconfigPublic, responses=responses(409, 410)
)
async def get_kubeconfig(
    cluster_id: str, principal: Editor, session: SessionDep, box: BoxDep
) -> KubeconfigPublic:
    """Admins and editors only: the kubeconfig is cluster-admin. Not served once deleting."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    if cluster.phase == Phase.DELETED.value:
        raise HTTPException(410, f"cluster {cluster.name} is deleted; it has no kubeconfig")
    if cluster.delete_requested_at is not None or cluster.phase == Phase.DELETING.value:
        raise HTTPException(
            409, f"cluster {cluster.name} is being deleted; its kubeconfig is no longer served"
        )
    if cluster.kubeconfig_enc is None:
        raise HTTPException(
            409,
            f"cluster {cluster.name} has no kubeconfig yet (phase {cluster.phase}); retry once it is Running",
        )
    return KubeconfigPublic(cluster_id=cluster.id, kubeconfig=box.decrypt(cluster.kubeconfig_enc))


async def _manage_update(
    request: Request,
    session: SessionDep,
    cluster: Cluster,
    update: str,
    arg: Any = None,
    retry_of: Callable[[dict[str, Any]], ActionAccepted | None] | None = None,
) -> ActionAccepted:
    """Drive one management update. `retry_of` finds, in the workflow's state, the action an
    identical earlier request queued: a refused retry whose first answer was lost gets it."""
    phase = Phase(cluster.phase)
    if phase not in MANAGED_PHASES or cluster.delete_requested_at is not None:
        raise HTTPException(
            409, f"cluster {cluster.name} is {phase}; {update} needs a Running cluster"
        )
    client = await request.app.state.temporal.client()
    handle = client.get_workflow_handle(manage_workflow_id(cluster.id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(
                update, args=[] if arg is None else [arg], result_type=ActionAccepted
            ),
            UPDATE_TIMEOUT_SECONDS,
        )
    except WorkflowUpdateFailedError as exc:
        if retry_of is not None:
            state = await bounded(handle.query(QUERY_STATE, result_type=dict[str, Any]))
            earlier = retry_of(state)
            if earlier is not None:
                return earlier
        raise failure_http_error(exc, (409, "{action} refused: {message}"), action=update) from exc
    except TimeoutError as exc:
        raise HTTPException(
            503,
            f"the management workflow did not answer in {UPDATE_TIMEOUT_SECONDS:.0f}s; "
            "check that a control-plane worker runs (metalgate worker control-plane)",
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                409, f"cluster {cluster.name} is not under management yet; retry shortly"
            ) from exc
        raise


async def _action(
    request: Request,
    session: SessionDep,
    settings: Settings,
    cluster: Cluster,
    update: str,
    body: BaseModel,
    retry_of: Callable[[dict[str, Any]], ActionAccepted | None] | None = None,
    precheck: Callable[[], None] | None = None,
) -> ActionAccepted | JSONResponse:
    """One user action, answered once per `Idempotency-Key`; `precheck` refuses bad input
    (after a replay, so that a retry is answered like the first request)."""
    idem = idempotent_request(request, f"{cluster.project_id}:{cluster.id}:{update}", body)
    earlier = await replay(session, idem)
    if earlier is not None:
        return earlier
    if precheck is not None:
        precheck()
    accepted = await _manage_update(request, session, cluster, update, body, retry_of)
    await remember(session, idem, accepted, settings.idempotency_key_ttl_seconds)
    return accepted


def _queued_upgrade(version: str) -> Callable[[dict[str, Any]], ActionAccepted | None]:
    def find(state: dict[str, Any]) -> ActionAccepted | None:
        for action in state.get("pending", []):
            if action.get("kind") == UPDATE_UPGRADE and action.get("kubernetes_version") == version:
                return ActionAccepted(
                    action_id=str(action["id"]),
                    kind=UPDATE_UPGRADE,
                    message=f"upgrade to {version} is already queued (a retry of that request)",
                )
        return None

    return find


@router.post(
    "/{cluster_id}/upgrade", response_model=ActionAccepted, responses=responses(409, 422, 503)
)
async def upgrade_cluster(
    cluster_id: str,
    body: UpgradeRequest,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ActionAccepted | JSONResponse:
    """Rolling Kubernetes upgrade performed by the agent, node by node: one minor at a time,
    to a supported version. Asking for the running version is refused (409)."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    wanted, running = body.kubernetes_version, cluster.kubernetes_version

    def check() -> None:
        problem = settings.supported_versions().upgrade_problem(running, wanted)
        if problem is not None:
            raise FieldRefused(
                "body.kubernetes_version", problem, 409 if wanted == running else 422
            )

    return await _action(
        request, session, settings, cluster, UPDATE_UPGRADE, body, _queued_upgrade(wanted), check
    )


@router.post(
    "/{cluster_id}/scale",
    response_model=ActionAccepted,
    responses={**responses(409, 422, 503), **PLAN_ANSWER},
)
async def scale_cluster(
    cluster_id: str,
    body: ScaleRequest,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
    request: Request,
    dry_run: DryRun = False,
) -> ActionAccepted | JSONResponse:
    """Resize a worker pool; acquiring or releasing machines goes through the gateway. The
    stored spec shows the new count as soon as the workflow accepted it. With `dry_run=true`
    the answer is the plan of the machines the new count needs; nothing changes."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    if dry_run:
        plan = await _plan_scale(request, client, session, box, settings, cluster, body)
        return JSONResponse(plan.model_dump(mode="json"))
    answer = await _action(request, session, settings, cluster, UPDATE_SCALE, body)
    if isinstance(answer, ActionAccepted):
        spec = ClusterSpec.model_validate(cluster.spec)
        pools = [
            p.model_copy(update={"count": body.count}) if p.name == body.pool else p
            for p in spec.worker_pools
        ]
        cluster.spec = spec.model_copy(update={"worker_pools": pools}).model_dump(mode="json")
        await session.commit()
    return answer


async def _plan_scale(
    request: Request,
    client: Client,
    session: SessionDep,
    box: SecretBox,
    settings: Settings,
    cluster: Cluster,
    body: ScaleRequest,
) -> CapacityPlan:
    """Plan the machines a scale up needs; a scale down takes nothing."""
    if Phase(cluster.phase) not in MANAGED_PHASES or cluster.delete_requested_at is not None:
        raise HTTPException(
            409, f"cluster {cluster.name} is {cluster.phase}; scale needs a Running cluster"
        )
    spec = ClusterSpec.model_validate(cluster.spec)
    pool = next((p for p in spec.worker_pools if p.name == body.pool), None)
    if pool is None:
        names = [p.name for p in spec.worker_pools]
        raise FieldRefused("body.pool", f"no worker pool {body.pool!r}; pools are {names}")
    more = body.count - pool.count
    if more <= 0:
        return CapacityPlan(
            satisfiable=True,
            pools=[],
            summary=f"{pool.name}: {pool.count} -> {body.count} takes no machine from MAAS"
            + (f"; {-more} would be released" if more else ""),
        )
    ref = await cluster_ref(session, box, cluster, settings)
    return await plan_pools(
        request,
        client,
        cluster.project_id,
        ref.account,
        ref.gateway,
        [pool.model_copy(update={"count": more})],
        cluster_id=cluster.id,
    )


@router.post(
    "/{cluster_id}/repave", response_model=ActionAccepted, responses=responses(409, 422, 503)
)
async def repave_cluster(
    cluster_id: str,
    body: RepaveRequest,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ActionAccepted | JSONResponse:
    """Replace one node (`node`) or a whole pool (`pool`, rolling) with freshly deployed MAAS
    machines, by the pool's `repave` settings (strategy, max_surge, max_unavailable); MAAS
    calls go through the gateway. Follow it in the cluster's events."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)

    def check() -> None:
        if body.node is not None:
            _known_node(cluster, body.node, "body.node")
            return
        spec = ClusterSpec.model_validate(cluster.spec)
        if body.pool is not None and spec.pool(body.pool) is None:
            names = [p.name for p in spec.pools]
            raise FieldRefused("body.pool", f"no pool {body.pool!r}; pools are {names}")

    return await _action(request, session, settings, cluster, UPDATE_REPAVE, body, precheck=check)


def _known_node(cluster: Cluster, node: str, field: str) -> Machine:
    """The cluster's machine `node` names (hostname or system id), or a 422 naming `field`."""
    machines = [Machine.model_validate(m) for m in cluster.machines]
    found = next((m for m in machines if node in (m.hostname, m.system_id)), None)
    if found is None:
        names = sorted(m.hostname for m in machines)
        raise FieldRefused(
            field,
            f"no node {node!r} in cluster {cluster.name} (hostname or system id); "
            f"its nodes are {names}",
        )
    return found


NodeName = Annotated[
    str,
    Path(
        max_length=MAX_HOSTNAME,
        pattern=HOSTNAME_PATTERN,
        description="the node's hostname or MAAS system id",
    ),
]


async def _node_action(
    request: Request,
    session: SessionDep,
    settings: Settings,
    project_id: str,
    cluster_id: str,
    node: str,
    update: str,
) -> ActionAccepted | JSONResponse:
    cluster = await project_cluster(session, project_id, cluster_id)

    def check() -> None:
        _known_node(cluster, node, "path.node")

    return await _action(
        request, session, settings, cluster, update, NodeRequest(node=node), precheck=check
    )


@router.post(
    "/{cluster_id}/nodes/{node}/cordon",
    response_model=ActionAccepted,
    responses=responses(409, 422, 503),
)
async def cordon_node(
    cluster_id: str,
    node: NodeName,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ActionAccepted | JSONResponse:
    """Mark the node unschedulable (kubectl cordon), through the cluster's agent; queued
    behind the cluster's other actions."""
    return await _node_action(
        request, session, settings, principal.project_id, cluster_id, node, UPDATE_CORDON
    )


@router.post(
    "/{cluster_id}/nodes/{node}/drain",
    response_model=ActionAccepted,
    responses=responses(409, 422, 503),
)
async def drain_node(
    cluster_id: str,
    node: NodeName,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ActionAccepted | JSONResponse:
    """Cordon the node and evict its pods honouring PodDisruptionBudgets (kubectl drain),
    through the cluster's agent. A budget that never allows it fails the drain, naming it."""
    return await _node_action(
        request, session, settings, principal.project_id, cluster_id, node, UPDATE_DRAIN
    )


@router.post(
    "/{cluster_id}/nodes/{node}/uncordon",
    response_model=ActionAccepted,
    responses=responses(409, 422, 503),
)
async def uncordon_node(
    cluster_id: str,
    node: NodeName,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ActionAccepted | JSONResponse:
    """Mark the node schedulable again (kubectl uncordon), through the cluster's agent."""
    return await _node_action(
        request, session, settings, principal.project_id, cluster_id, node, UPDATE_UNCORDON
    )


async def _pause_or_resume(
    request: Request, session: SessionDep, project_id: str, cluster_id: str, update: str
) -> ActionAccepted:
    cluster = await project_cluster(session, project_id, cluster_id)
    accepted = await _manage_update(request, session, cluster, update)
    # Shown by GET (which needs no worker); a repeated pause keeps the first time.
    if update == UPDATE_RESUME:
        cluster.management_paused_at = None
    elif cluster.management_paused_at is None:
        cluster.management_paused_at = utcnow()
    session.add(ClusterEvent(cluster_id=cluster.id, phase=cluster.phase, message=accepted.message))
    await session.commit()
    return accepted


@router.post("/{cluster_id}/pause", response_model=ActionAccepted, responses=responses(409, 503))
async def pause_cluster(
    cluster_id: str, principal: Editor, session: SessionDep, request: Request
) -> ActionAccepted:
    """Pause management: queued actions wait and new upgrade, scale, repave, cordon, drain and
    uncordon requests are refused (409) until resumed; an action already running finishes.
    Agent reports go on."""
    return await _pause_or_resume(request, session, principal.project_id, cluster_id, UPDATE_PAUSE)


@router.post("/{cluster_id}/resume", response_model=ActionAccepted, responses=responses(409, 503))
async def resume_cluster(
    cluster_id: str, principal: Editor, session: SessionDep, request: Request
) -> ActionAccepted:
    """Resume management: queued actions run again, in order."""
    return await _pause_or_resume(request, session, principal.project_id, cluster_id, UPDATE_RESUME)


@router.get("/{cluster_id}/nodes", response_model=NodeList, responses=responses())
async def cluster_nodes(cluster_id: str, principal: Viewer, session: SessionDep) -> NodeList:
    """Each machine of the cluster with what its agent last reported (from the store)."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    spec = ClusterSpec.model_validate(cluster.spec)
    reports = await session.scalars(
        select(AgentNode.report).where(AgentNode.cluster_id == cluster.id)
    )
    reported = {r.hostname: r for r in (NodeReport.model_validate(x["node"]) for x in reports)}
    items: list[NodePublic] = []
    for machine in (Machine.model_validate(m) for m in cluster.machines):
        report = reported.pop(machine.hostname, None)
        role = "control-plane" if machine.pool == spec.control_plane.name else "worker"
        items.append(
            NodePublic(
                hostname=machine.hostname,
                system_id=machine.system_id,
                pool=machine.pool,
                zone=machine.zone,
                machine_status=machine.status,
                role=report.role if report else role,
                kubelet_version=report.kubelet_version if report else "",
                ready=report.ready if report else None,
                remediation=machine.remediation or "-",
            )
        )
    # A node the agent reports that the store lists no machine for (yet) is shown too.
    items += [
        NodePublic(
            hostname=r.hostname,
            system_id=r.system_id,
            role=r.role,
            kubelet_version=r.kubelet_version,
            ready=r.ready,
        )
        for r in reported.values()
    ]
    return NodeList(items=sorted(items, key=lambda n: (n.role != "control-plane", n.hostname)))


@router.get("/{cluster_id}/events", response_model=ClusterEventList, responses=responses())
async def cluster_events(
    cluster_id: str,
    principal: Viewer,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="only events with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ClusterEventList:
    await project_cluster(session, principal.project_id, cluster_id)
    rows = await session.scalars(
        select(ClusterEvent)
        .where(ClusterEvent.cluster_id == cluster_id, ClusterEvent.id > after)
        .order_by(ClusterEvent.id)
        .limit(limit)
    )
    return ClusterEventList(
        items=[
            ClusterEventPublic(
                id=e.id,
                at=e.at,
                phase=Phase(e.phase) if e.phase else None,
                reason=Reason(e.reason) if e.reason else None,
                message=e.message,
            )
            for e in rows.all()
        ]
    )
