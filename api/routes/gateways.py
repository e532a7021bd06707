"""Private cloud gateways: create (one-time token), register, heartbeat, status, delete."""

from __future__ import annotations

import asyncio
import logging
import shlex
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from temporalio.service import RPCError

from api.audit import Actor, set_actor
from api.deps import UNAUTHORIZED, BoxDep, Editor, SessionDep, SettingsDep, Viewer
from api.errors import responses
from api.gateway_status import Pollers, activity_pollers, gateway_status
from api.schemas.gateways import (
    GatewayCreate,
    GatewayCreated,
    GatewayList,
    GatewayPublic,
    GatewayReplicaPublic,
    RegistrationTokenCreate,
)
from api.temporal_gate import TemporalGate, TemporalUnavailable, bounded
from domain.gateway import (
    GatewayHeartbeat,
    GatewayIdentity,
    GatewayRegistration,
    GatewayStatus,
    ProxySettings,
)
from domain.lifecycle import GatewayRef
from domain.naming import SYSTEM_GATEWAY_ID, SYSTEM_GATEWAY_NAME, gateway_queue
from domain.phases import REASON_HINTS, Phase, Reason
from runtime.codec import gateway_key_spec
from runtime.schedules import ensure_orphan_sweep_schedule
from runtime.settings import Settings
from runtime.temporal import codec_key_specs
from store.db import upsert
from store.models import CloudAccount, Cluster, ClusterEvent, Gateway, GatewayReplica
from store.secrets import hash_token, new_id, new_token, seal_unsealed_accounts
from store.types import utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/gateways", tags=["gateways"])
gateway_bearer = HTTPBearer(auto_error=False, scheme_name="GatewaySecret")
GatewayBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(gateway_bearer)]


def system_gateway_enabled(settings: Settings) -> bool:
    return settings.mode == "self-hosted"


async def _replicas(session: SessionDep, gateway_id: str) -> list[GatewayReplicaPublic]:
    rows = await session.scalars(
        select(GatewayReplica)
        .where(GatewayReplica.gateway_id == gateway_id)
        .order_by(GatewayReplica.last_seen.desc())
    )
    return [
        GatewayReplicaPublic(
            replica_id=r.replica_id,
            version=r.version,
            last_seen=r.last_seen,
            maas_reachable=r.maas_reachable,
        )
        for r in rows.all()
    ]


async def gateway_public(
    request: Request,
    session: SessionDep,
    gateway: Gateway | None,
    pollers: Pollers | Literal["ask"] | None = "ask",
) -> GatewayPublic:
    """`gateway=None` is the system gateway, which has no row."""
    settings: Settings = request.app.state.settings
    gate: TemporalGate = request.app.state.temporal
    gateway_id = gateway.id if gateway else SYSTEM_GATEWAY_ID
    if pollers == "ask":
        pollers = await activity_pollers(gate, gateway_id)
    replicas = await _replicas(session, gateway_id) if gateway else []
    status, detail = gateway_status(
        gateway_id=gateway_id,
        registered=gateway is None or gateway.registered_at is not None,
        pollers=pollers,
        last_heartbeat=gateway.last_heartbeat_at if gateway else None,
        heartbeat_interval=settings.gateway_heartbeat_interval,
    )
    if pollers is not None:
        count = pollers.live
    else:
        cutoff = utcnow() - timedelta(seconds=3 * settings.gateway_heartbeat_interval)
        count = sum(1 for r in replicas if r.last_seen > cutoff)
    last_seen = max(
        (
            t
            for t in (
                pollers.last_access if pollers else None,
                gateway and gateway.last_heartbeat_at,
            )
            if t
        ),
        default=None,
    )
    if gateway is not None and gateway.revoked_at is not None:
        status, detail = GatewayStatus.REVOKED, "revoked: its credential no longer works"
    return GatewayPublic(
        id=gateway_id,
        name=gateway.name if gateway else SYSTEM_GATEWAY_NAME,
        system=gateway is None,
        task_queue=gateway_queue(gateway_id),
        status=status,
        status_detail=detail,
        version=gateway.version if gateway else None,
        replicas=count,
        replica_heartbeats=replicas,
        last_seen=last_seen,
        hostname=gateway.hostname if gateway else None,
        proxy=ProxySettings.model_validate(gateway.proxy) if gateway else ProxySettings(),
        created_at=gateway.created_at if gateway else None,
        registered_at=gateway.registered_at if gateway else None,
        revoked_at=gateway.revoked_at if gateway else None,
    )


async def project_gateway(session: SessionDep, project_id: str, gateway_id: str) -> Gateway:
    gateway = await session.get(Gateway, gateway_id)
    if gateway is None or gateway.project_id != project_id:
        raise HTTPException(404, f"no gateway {gateway_id!r} in this project; see GET /v1/gateways")
    return gateway


@router.post(
    "",
    status_code=201,
    response_model=GatewayCreated,
    responses=responses(409),
)
async def create_gateway(
    body: GatewayCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> GatewayCreated:
    """Returns a one-time registration token and the command that uses it."""
    token = new_token("mgr")
    expires_at = utcnow() + timedelta(seconds=body.token_ttl_seconds)
    gateway = Gateway(
        id=new_id("gw"),
        project_id=principal.project_id,
        name=body.name,
        proxy=body.proxy.model_dump(mode="json"),
        token_hash=hash_token(token),
        token_expires_at=expires_at,
    )
    session.add(gateway)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            409, f"name: a gateway named {body.name!r} exists in this project; pick another name"
        ) from exc
    return GatewayCreated(
        gateway=await gateway_public(request, session, gateway),
        registration_token=token,
        expires_at=expires_at,
        register_command=register_command(settings, token),
    )


def register_command(settings: Settings, token: str) -> str:
    return shlex.join(
        ["metalgate", "gateway", "register", "--api-url", settings.api_url, "--token", token]
    )


@router.post(
    "/{gateway_id}/registration-token",
    status_code=201,
    response_model=GatewayCreated,
    responses=responses(409),
)
async def reissue_registration_token(
    gateway_id: str,
    body: RegistrationTokenCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> GatewayCreated:
    """A new one-time token; registering with it replaces the gateway's secret."""
    gateway = await project_gateway(session, principal.project_id, gateway_id)
    if gateway.revoked_at is not None:
        raise HTTPException(
            409, f"gateway {gateway.name} is revoked; create a new gateway (POST /v1/gateways)"
        )
    token = new_token("mgr")
    gateway.token_hash = hash_token(token)
    gateway.token_expires_at = utcnow() + timedelta(seconds=body.token_ttl_seconds)
    await session.commit()
    return GatewayCreated(
        gateway=await gateway_public(request, session, gateway),
        registration_token=token,
        expires_at=gateway.token_expires_at,
        register_command=register_command(settings, token),
    )


@router.post("/{gateway_id}/revoke", response_model=GatewayPublic, responses=responses(409))
async def revoke_gateway(
    gateway_id: str, principal: Editor, session: SessionDep, request: Request
) -> GatewayPublic:
    """Its secret stops working at once for the API and, within the front door's cache
    bound (METALGATE_FRONTDOOR_AUTH_CACHE_SECONDS), for Temporal; its clusters show
    GatewayRevoked."""
    if gateway_id == SYSTEM_GATEWAY_ID:
        raise HTTPException(409, "the system gateway is part of the control plane")
    gateway = await project_gateway(session, principal.project_id, gateway_id)
    if gateway.revoked_at is None:
        now = utcnow()
        gateway.revoked_at = now
        gateway.secret_hash = None
        gateway.token_hash = None
        gateway.token_expires_at = None
        live = (
            await session.scalars(
                select(Cluster).where(
                    Cluster.gateway_id == gateway_id, Cluster.phase != Phase.DELETED.value
                )
            )
        ).all()
        message = f"gateway {gateway.name} was revoked; {REASON_HINTS[Reason.GATEWAY_REVOKED]}"
        for cluster in live:
            cluster.reason = Reason.GATEWAY_REVOKED.value
            cluster.message = message
            cluster.updated_at = now
            session.add(
                ClusterEvent(
                    cluster_id=cluster.id,
                    at=now,
                    phase=cluster.phase,
                    reason=Reason.GATEWAY_REVOKED.value,
                    message=message,
                )
            )
        await session.commit()
    return await gateway_public(request, session, gateway)


async def schedule_orphan_sweep(gate: TemporalGate, gateway: Gateway) -> None:
    """Best effort: with Temporal down, the next control-plane worker start schedules it."""
    try:
        client = await gate.client()
        await bounded(
            ensure_orphan_sweep_schedule(
                client, GatewayRef(id=gateway.id, name=gateway.name), replace=False
            )
        )
    except (TemporalUnavailable, RPCError, TimeoutError) as err:
        log.warning("gateway %s: orphan sweep not scheduled yet: %s", gateway.id, err)


@router.post("/register", response_model=GatewayIdentity, responses=responses())
async def register_gateway(
    body: GatewayRegistration,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
) -> GatewayIdentity:
    """Exchanges the one-time token for the gateway's identity (used by the gateway itself).

    The gateway's public sealing key is kept; accounts it serves that were stored before
    sealing are sealed to it now."""
    secret = new_token("mgs")
    now = utcnow()
    # One conditional UPDATE spends the token, so two racing registrations cannot both win.
    gateway_id = await session.scalar(
        update(Gateway)
        .where(
            Gateway.token_hash == hash_token(body.token),
            Gateway.token_expires_at > now,
            Gateway.revoked_at.is_(None),
        )
        .values(
            token_hash=None,
            token_expires_at=None,
            secret_hash=hash_token(secret),
            hostname=body.hostname,
            version=body.version,
            registered_at=now,
            sealing_public_key=body.sealing_public_key,
        )
        .returning(Gateway.id)
    )
    if gateway_id is None:
        raise HTTPException(
            401,
            "token: registration token unknown, expired or already used; "
            "create a new gateway (POST /v1/gateways) for a fresh token",
        )
    if body.sealing_public_key is not None:
        unsealed = await session.scalars(
            select(CloudAccount).where(
                CloudAccount.gateway_id == gateway_id, CloudAccount.maas_api_key_sealed.is_(None)
            )
        )
        sealed = seal_unsealed_accounts(unsealed.all(), box, body.sealing_public_key)
        if sealed:
            log.info(
                "gateway %s: sealed %d account key(s) stored before sealing", gateway_id, sealed
            )
    await session.commit()
    gateway = await session.get(Gateway, gateway_id)
    assert gateway is not None
    set_actor(request, Actor("gateway", gateway.id, gateway.name, gateway.project_id))
    await schedule_orphan_sweep(request.app.state.temporal, gateway)
    return GatewayIdentity(
        gateway_id=gateway.id,
        name=gateway.name,
        task_queue=gateway_queue(gateway.id),
        api_url=settings.api_url,
        gateway_secret=secret,
        frontdoor_address=settings.frontdoor_address,
        frontdoor_ca_pem=frontdoor_ca_pem(settings),
        temporal_namespace=settings.temporal_namespace,
        # Derived from the active key for this gateway alone: it opens the tasks of its own
        # queue, never another gateway's payloads or the control plane's.
        codec_keys=[gateway_key_spec(codec_key_specs(settings)[0], gateway.id)],
        proxy=ProxySettings.model_validate(gateway.proxy),
        heartbeat_interval=settings.gateway_heartbeat_interval,
    )


def frontdoor_ca_pem(settings: Settings) -> str | None:
    """The CA gateways trust for the front door; None: the system's roots."""
    return settings.frontdoor_ca_file.read_text() if settings.frontdoor_ca_file else None


@router.post("/{gateway_id}/heartbeat", status_code=204, responses=responses())
async def gateway_heartbeat(
    gateway_id: str,
    body: GatewayHeartbeat,
    credentials: GatewayBearer,
    session: SessionDep,
    request: Request,
) -> Response:
    """Authenticated by the gateway secret from registration (Bearer)."""
    if credentials is None:
        raise HTTPException(
            401, "missing credentials: send `Authorization: Bearer <gateway secret>`", UNAUTHORIZED
        )
    gateway = await session.scalar(
        select(Gateway).where(Gateway.secret_hash == hash_token(credentials.credentials))
    )
    if gateway is None or gateway.id != gateway_id:
        raise HTTPException(
            401, "invalid gateway secret for this gateway; register again", UNAUTHORIZED
        )
    set_actor(request, Actor("gateway", gateway.id, gateway.name, gateway.project_id))
    now = utcnow()
    gateway.version = body.version
    gateway.last_heartbeat_at = now
    await session.execute(
        upsert(
            session,
            GatewayReplica.__table__,
            {
                "gateway_id": gateway_id,
                "replica_id": body.replica_id[:128],
                "version": body.version[:64],
                "maas_reachable": body.maas_reachable,
                "last_seen": now,
            },
            ["gateway_id", "replica_id"],
        )
    )
    await session.commit()
    return Response(status_code=204)


@router.get("", response_model=GatewayList, responses=responses())
async def list_gateways(
    principal: Viewer, session: SessionDep, settings: SettingsDep, request: Request
) -> GatewayList:
    rows = (
        await session.scalars(
            select(Gateway)
            .where(Gateway.project_id == principal.project_id)
            .order_by(Gateway.created_at)
        )
    ).all()
    targets: list[Gateway | None] = [None] if system_gateway_enabled(settings) else []
    targets += list(rows)
    # Temporal is asked about every queue at once; the store session is used one at a time.
    gate: TemporalGate = request.app.state.temporal
    pollers = await asyncio.gather(
        *(activity_pollers(gate, g.id if g else SYSTEM_GATEWAY_ID) for g in targets)
    )
    return GatewayList(
        items=[
            await gateway_public(request, session, g, p)
            for g, p in zip(targets, pollers, strict=True)
        ]
    )


@router.get("/{gateway_id}", response_model=GatewayPublic, responses=responses())
async def get_gateway(
    gateway_id: str, principal: Viewer, session: SessionDep, settings: SettingsDep, request: Request
) -> GatewayPublic:
    if gateway_id == SYSTEM_GATEWAY_ID and system_gateway_enabled(settings):
        return await gateway_public(request, session, None)
    gateway = await project_gateway(session, principal.project_id, gateway_id)
    return await gateway_public(request, session, gateway)


@router.delete("/{gateway_id}", status_code=204, responses=responses(409))
async def delete_gateway(gateway_id: str, principal: Editor, session: SessionDep) -> Response:
    """Refused while a cloud account or a live cluster still goes through this gateway."""
    if gateway_id == SYSTEM_GATEWAY_ID:
        raise HTTPException(
            409, "the system gateway is part of the control plane and cannot be deleted"
        )
    gateway = await project_gateway(session, principal.project_id, gateway_id)
    clusters = await session.scalar(
        select(func.count())
        .select_from(Cluster)
        .where(Cluster.gateway_id == gateway_id, Cluster.phase != Phase.DELETED.value)
    )
    if clusters:
        raise HTTPException(
            409, f"gateway {gateway.name} still serves {clusters} cluster(s); delete them first"
        )
    accounts = (
        await session.scalars(
            select(CloudAccount.name).where(CloudAccount.gateway_id == gateway_id)
        )
    ).all()
    if accounts:
        raise HTTPException(
            409,
            f"gateway {gateway.name} is used by cloud account(s) {sorted(accounts)}; delete them first",
        )
    await session.delete(gateway)
    await session.commit()
    return Response(status_code=204)
