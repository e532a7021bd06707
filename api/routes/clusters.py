"""Clusters: the API writes intent (spec, delete request) and drives workflows; it never
writes lifecycle state, which only the workflows' activities record."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import BoxDep, Editor, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import responses
from api.routes.accounts import project_account
from api.schemas.clusters import (
    ClusterCreate,
    ClusterEventList,
    ClusterEventPublic,
    ClusterList,
    ClusterPublic,
    ConditionPublic,
    KubeconfigPublic,
)
from api.temporal_gate import bounded
from api.workflow_errors import named_failure
from domain.agent_wire import NodeReport
from domain.cluster import ClusterSpec
from domain.gateway import ProxySettings
from domain.maas import MaasAccount, Machine
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    SA_CLUSTER_ID,
    SA_CLUSTER_NAME,
    SA_CLUSTER_PHASE,
    SA_GATEWAY_ID,
    SA_PROJECT,
    SYSTEM_GATEWAY_ID,
    SYSTEM_GATEWAY_NAME,
    create_workflow_id,
    delete_workflow_id,
    manage_workflow_id,
)
from domain.phases import MANAGED_PHASES, REASON_HINTS, Phase, Reason
from runtime.settings import Settings, installation_id
from store.models import AgentNode, CloudAccount, Cluster, ClusterEvent, Gateway
from store.secrets import SecretBox, new_id
from store.types import utcnow
from workflows.contracts import (
    CREATE_WORKFLOW,
    DELETE_WORKFLOW,
    UPDATE_REPAVE,
    UPDATE_SCALE,
    UPDATE_UPGRADE,
    ActionAccepted,
    ClusterRef,
    CreateClusterInput,
    DeleteClusterInput,
    GatewayRef,
    LifecycleTimeouts,
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


def cluster_public(
    cluster: Cluster, settings: Settings, nodes: list[NodeReport] | None = None
) -> ClusterPublic:
    reason = Reason(cluster.reason) if cluster.reason else None
    return ClusterPublic(
        id=cluster.id,
        project_id=cluster.project_id,
        name=cluster.name,
        cloud_account_id=cluster.cloud_account_id,
        gateway_id=cluster.gateway_id,
        spec=ClusterSpec.model_validate(cluster.spec),
        phase=Phase(cluster.phase),
        reason=reason,
        hint=REASON_HINTS.get(reason) if reason else None,
        message=cluster.message,
        conditions=[ConditionPublic.model_validate(c) for c in cluster.conditions],
        machines=[Machine.model_validate(m) for m in cluster.machines],
        nodes=nodes or [],
        kubernetes_version=cluster.kubernetes_version,
        agent_silent=cluster.silent,
        last_heartbeat_at=cluster.last_heartbeat_at,
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


async def cluster_ref(session: SessionDep, box: SecretBox, cluster: Cluster) -> ClusterRef:
    """What a lifecycle workflow needs; the MAAS key travels encrypted by the payload codec."""
    account = await session.get(CloudAccount, cluster.cloud_account_id)
    if account is None:
        raise HTTPException(
            409, f"cluster {cluster.name}: its cloud account {cluster.cloud_account_id} is gone"
        )
    if account.gateway_id == SYSTEM_GATEWAY_ID:
        gateway = GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME)
    else:
        row = await session.get(Gateway, account.gateway_id)
        if row is None:
            raise HTTPException(
                409, f"cluster {cluster.name}: gateway {account.gateway_id} is gone"
            )
        gateway = GatewayRef(
            id=row.id, name=row.name, proxy=ProxySettings.model_validate(row.proxy)
        )
    return ClusterRef(
        cluster_id=cluster.id,
        project_id=cluster.project_id,
        spec=ClusterSpec.model_validate(cluster.spec),
        gateway=gateway,
        account=MaasAccount(url=account.maas_url, api_key=box.decrypt(account.maas_api_key_enc)),
    )


def _search_attributes(ref: ClusterRef, phase: Phase) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_CLUSTER_ID, ref.cluster_id),
            SearchAttributePair(SA_CLUSTER_NAME, ref.spec.name),
            SearchAttributePair(SA_PROJECT, ref.project_id),
            SearchAttributePair(SA_CLUSTER_PHASE, phase.value),
            SearchAttributePair(SA_GATEWAY_ID, ref.gateway.id),
        ]
    )


def lifecycle_timeouts(settings: Settings) -> LifecycleTimeouts:
    return LifecycleTimeouts(
        agent_ready=settings.agent_ready_timeout,
        deploy=settings.deploy_timeout,
        gateway_probe=settings.gateway_probe_timeout,
        release_none=settings.release_timeout_none,
        release_quick=settings.release_timeout_quick,
        release_secure=settings.release_timeout_secure,
    )


async def start_create(client: Client, ref: ClusterRef, settings: Settings) -> None:
    """Start the create saga once: a retry joins the running one, a closed one is not redone."""
    try:
        await bounded(
            client.start_workflow(
                CREATE_WORKFLOW,
                CreateClusterInput(
                    cluster=ref.model_copy(update={"installation_id": installation_id(settings)}),
                    timeouts=lifecycle_timeouts(settings),
                    silence_seconds=settings.agent_silence_timeout,
                ),
                id=create_workflow_id(ref.cluster_id),
                task_queue=CONTROL_PLANE_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=_search_attributes(ref, Phase.PENDING),
            )
        )
    except WorkflowAlreadyStartedError:
        log.info("cluster %s: create already ran", ref.cluster_id)


@router.post("", status_code=202, response_model=ClusterPublic, responses=responses(409, 422, 503))
async def create_cluster(
    body: ClusterCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
) -> ClusterPublic:
    """Stores the spec as Pending, then starts the create saga. A retried call is harmless."""
    account = await project_account(session, principal.project_id, body.cloud_account_id)
    spec = body.spec()
    existing = await session.scalar(
        select(Cluster).where(
            Cluster.project_id == principal.project_id, Cluster.active_name == spec.name
        )
    )
    if existing is not None:
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
        await start_create(client, await cluster_ref(session, box, existing), settings)
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
    await start_create(client, await cluster_ref(session, box, cluster), settings)
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
    nodes = [NodeReport.model_validate(report["node"]) for report in reports]
    return cluster_public(cluster, settings, nodes)


@router.delete(
    "/{cluster_id}", status_code=202, response_model=ClusterPublic, responses=responses(503)
)
async def delete_cluster(
    cluster_id: str,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
) -> ClusterPublic:
    """Starts the delete saga (from any phase); deleting again joins or skips it."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    if cluster.phase == Phase.DELETED.value:
        return cluster_public(cluster, settings)
    ref = await cluster_ref(session, box, cluster)
    if cluster.delete_requested_at is None:
        cluster.delete_requested_at = utcnow()
        session.add(
            ClusterEvent(cluster_id=cluster.id, phase=cluster.phase, message="delete requested")
        )
        await session.commit()
    await bounded(
        client.start_workflow(
            DELETE_WORKFLOW,
            DeleteClusterInput(cluster=ref, timeouts=lifecycle_timeouts(settings)),
            id=delete_workflow_id(cluster.id),
            task_queue=CONTROL_PLANE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_search_attributes(ref, Phase.DELETING),
        )
    )
    return cluster_public(cluster, settings)


@router.get("/{cluster_id}/kubeconfig", response_model=KubeconfigPublic, responses=responses(409))
async def get_kubeconfig(
    cluster_id: str, principal: Editor, session: SessionDep, box: BoxDep
) -> KubeconfigPublic:
    """Admins and editors only: the kubeconfig is cluster-admin."""
    cluster = await project_cluster(session, principal.project_id, cluster_id)
    if cluster.kubeconfig_enc is None:
        raise HTTPException(
            409,
            f"cluster {cluster.name} has no kubeconfig yet (phase {cluster.phase}); retry once it is Running",
        )
    return KubeconfigPublic(cluster_id=cluster.id, kubeconfig=box.decrypt(cluster.kubeconfig_enc))


async def _manage_update(
    request: Request,
    session: SessionDep,
    principal_project: str,
    cluster_id: str,
    update: str,
    arg: Any,
) -> ActionAccepted:
    cluster = await project_cluster(session, principal_project, cluster_id)
    phase = Phase(cluster.phase)
    if phase not in MANAGED_PHASES or cluster.delete_requested_at is not None:
        raise HTTPException(
            409, f"cluster {cluster.name} is {phase}; {update} needs a Running cluster"
        )
    client = await request.app.state.temporal.client()
    handle = client.get_workflow_handle(manage_workflow_id(cluster.id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(update, arg, result_type=ActionAccepted),
            UPDATE_TIMEOUT_SECONDS,
        )
    except WorkflowUpdateFailedError as exc:
        raise HTTPException(409, f"{update} refused: {named_failure(exc)[1]}") from exc
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


@router.post("/{cluster_id}/upgrade", response_model=ActionAccepted, responses=responses(409, 503))
async def upgrade_cluster(
    cluster_id: str, body: UpgradeRequest, principal: Editor, session: SessionDep, request: Request
) -> ActionAccepted:
    """Rolling Kubernetes upgrade performed by the agent, node by node."""
    return await _manage_update(
        request, session, principal.project_id, cluster_id, UPDATE_UPGRADE, body
    )


@router.post("/{cluster_id}/scale", response_model=ActionAccepted, responses=responses(409, 503))
async def scale_cluster(
    cluster_id: str, body: ScaleRequest, principal: Editor, session: SessionDep, request: Request
) -> ActionAccepted:
    """Resize a worker pool; acquiring or releasing machines goes through the gateway."""
    return await _manage_update(
        request, session, principal.project_id, cluster_id, UPDATE_SCALE, body
    )


@router.post("/{cluster_id}/repave", response_model=ActionAccepted, responses=responses(409, 503))
async def repave_cluster(
    cluster_id: str, body: RepaveRequest, principal: Editor, session: SessionDep, request: Request
) -> ActionAccepted:
    return await _manage_update(
        request, session, principal.project_id, cluster_id, UPDATE_REPAVE, body
    )


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
