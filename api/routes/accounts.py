"""Cloud accounts: a MAAS reached through one gateway, validated through it before acceptance.

The MAAS key is sealed to that gateway's public key on arrival; the store and every workflow
keep only the sealed form, which only that gateway opens. Moving an account to another
gateway takes the key again: the control plane cannot open the sealed copy to re-seal it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from activities.models import CheckAccountResult
from api.deps import Editor, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import responses
from api.routes.gateways import project_gateway, system_gateway_enabled
from api.schemas.accounts import (
    CloudAccountCreate,
    CloudAccountList,
    CloudAccountMove,
    CloudAccountPublic,
    KeyThroughGateway,
)
from api.temporal_gate import bounded
from api.workflow_errors import GATEWAY_OFFLINE, failure_http_error
from domain.gateway import ProxySettings
from domain.lifecycle import GatewayRef
from domain.maas import MaasAccount
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    SYSTEM_GATEWAY_ID,
    SYSTEM_GATEWAY_NAME,
    VALIDATE_ACCOUNT_WORKFLOW,
    validate_account_workflow_id,
)
from domain.phases import Phase, Reason
from runtime import system_gateway_keys
from runtime.settings import Settings
from store.models import CloudAccount, Cluster, ClusterEvent
from store.secrets import new_id, seal_maas_key
from store.types import utcnow
from workflows.contracts import ValidateAccountInput

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/cloud-accounts", tags=["cloud accounts"])


def account_public(account: CloudAccount) -> CloudAccountPublic:
    info: dict[str, Any] = account.info or {}
    return CloudAccountPublic(
        id=account.id,
        project_id=account.project_id,
        name=account.name,
        maas_url=account.maas_url,
        gateway_id=account.gateway_id,
        maas_api_key_fingerprint=account.maas_api_key_fingerprint,
        maas_api_key_sealed=bool(account.maas_api_key_sealed),
        maas_version=info.get("maas_version"),
        zones=info.get("zones", []),
        resource_pools=info.get("resource_pools", []),
        machines=info.get("machines"),
        ready_machines=info.get("ready_machines"),
        validated_at=account.validated_at,
        created_at=account.created_at,
    )


def _offline(name: str) -> HTTPException:
    return HTTPException(503, GATEWAY_OFFLINE.format(gateway=name))


async def _validate(
    request: Request, client: Any, account_id: str, account: MaasAccount, gateway: GatewayRef
) -> CheckAccountResult:
    """Run the validation workflow through the gateway; bounded so the caller gets an answer."""
    wait: float = request.app.state.account_validation_seconds
    handle: WorkflowHandle[Any, CheckAccountResult] = await bounded(
        client.start_workflow(
            VALIDATE_ACCOUNT_WORKFLOW,
            ValidateAccountInput(account=account, gateway=gateway, wait_seconds=wait),
            id=validate_account_workflow_id(account_id),
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=CheckAccountResult,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            execution_timeout=timedelta(seconds=wait + 30),
        )
    )
    try:
        return await asyncio.wait_for(handle.result(), wait + 5)
    except TimeoutError as exc:
        await _terminate_quietly(handle)
        raise _offline(gateway.name) from exc
    except WorkflowFailureError as exc:
        raise failure_http_error(
            exc, (422, "cloud account validation failed: {message}"), gateway=gateway.name
        ) from exc


async def _terminate_quietly(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        await handle.terminate("the API stopped waiting for validation")
    except RPCError:
        log.debug("validation workflow %s already closed", handle.id)


async def _sealing_target(
    session: SessionDep, settings: Settings, project_id: str, body: KeyThroughGateway
) -> tuple[GatewayRef, str]:
    """The gateway `body` names and the public key its MAAS key is sealed to."""
    if body.use_system_gateway:
        if not system_gateway_enabled(settings):
            raise HTTPException(
                422,
                "use_system_gateway: this control plane runs in saas mode and has no system "
                "gateway; install a private cloud gateway (POST /v1/gateways) and pass its gateway_id",
            )
        public_key = system_gateway_keys.public_key(settings)
        if public_key is None:
            raise _offline(SYSTEM_GATEWAY_NAME)
        return GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME), public_key
    assert body.gateway_id is not None
    gateway = await project_gateway(session, project_id, body.gateway_id)
    if gateway.revoked_at is not None:
        raise HTTPException(
            409, f"gateway_id: gateway {gateway.name} is revoked; pick another gateway"
        )
    if gateway.registered_at is None:
        # Offline for sure, so no need to wait for the validation to time out.
        raise HTTPException(
            503,
            f"gateway {gateway.name} is offline: it never registered; run its "
            "`metalgate gateway register` command on its host, then `metalgate gateway run`",
        )
    if gateway.sealing_public_key is None:
        raise HTTPException(
            409,
            f"gateway_id: gateway {gateway.name} registered before keys were sealed to "
            "gateways and has no sealing key; register it again (`metalgate gateway "
            "reissue-token`, then the register command it prints, on its host)",
        )
    ref = GatewayRef(
        id=gateway.id, name=gateway.name, proxy=ProxySettings.model_validate(gateway.proxy)
    )
    return ref, gateway.sealing_public_key


@router.post(
    "", status_code=201, response_model=CloudAccountPublic, responses=responses(409, 422, 503)
)
async def create_account(
    body: CloudAccountCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    request: Request,
) -> CloudAccountPublic:
    """Accepted only after its gateway reached MAAS with the key; the key is never returned."""
    gateway_ref, public_key = await _sealing_target(session, settings, principal.project_id, body)
    duplicate = await session.scalar(
        select(CloudAccount.id).where(
            CloudAccount.project_id == principal.project_id, CloudAccount.name == body.name
        )
    )
    if duplicate:
        raise HTTPException(
            409, f"name: a cloud account named {body.name!r} exists; pick another name"
        )
    row = CloudAccount(
        id=new_id("acc"),
        project_id=principal.project_id,
        name=body.name,
        maas_url=body.maas_url,
        gateway_id=gateway_ref.id,
    )
    seal_maas_key(row, public_key, body.maas_api_key.get_secret_value())
    maas = MaasAccount(url=row.maas_url, sealed_api_key=row.maas_api_key_sealed or "")
    checked = await _validate(request, client, row.id, maas, gateway_ref)
    row.info = checked.model_dump(mode="json")
    row.validated_at = utcnow()
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            409, f"name: a cloud account named {body.name!r} exists; pick another name"
        ) from exc
    return account_public(row)


@router.patch(
    "/{account_id}", response_model=CloudAccountPublic, responses=responses(409, 422, 503)
)
async def move_account(
    account_id: str,
    body: CloudAccountMove,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    request: Request,
) -> CloudAccountPublic:
    """Move the account to a gateway (or give its key again): the key is sealed to that
    gateway, validated through it, and the account's live clusters follow it."""
    account = await project_account(session, principal.project_id, account_id)
    gateway_ref, public_key = await _sealing_target(session, settings, principal.project_id, body)
    moved = CloudAccount(maas_url=account.maas_url)
    seal_maas_key(moved, public_key, body.maas_api_key.get_secret_value())
    maas = MaasAccount(url=account.maas_url, sealed_api_key=moved.maas_api_key_sealed or "")
    checked = await _validate(request, client, account.id, maas, gateway_ref)
    now = utcnow()
    account.gateway_id = gateway_ref.id
    account.maas_api_key_sealed = moved.maas_api_key_sealed
    account.maas_api_key_fingerprint = moved.maas_api_key_fingerprint
    account.maas_api_key_enc = ""
    account.info = checked.model_dump(mode="json")
    account.validated_at = now
    live = await session.scalars(
        select(Cluster).where(
            Cluster.cloud_account_id == account.id, Cluster.phase != Phase.DELETED.value
        )
    )
    for cluster in live.all():
        cluster.gateway_id = gateway_ref.id
        if cluster.reason == Reason.GATEWAY_REVOKED.value:
            cluster.reason, cluster.message = None, ""
        cluster.updated_at = now
        session.add(
            ClusterEvent(
                cluster_id=cluster.id,
                at=now,
                phase=cluster.phase,
                message=f"cloud account {account.name} moved to gateway {gateway_ref.name}",
            )
        )
    await session.commit()
    return account_public(account)


async def project_account(session: SessionDep, project_id: str, account_id: str) -> CloudAccount:
    account = await session.get(CloudAccount, account_id)
    if account is None or account.project_id != project_id:
        raise HTTPException(
            404, f"no cloud account {account_id!r} in this project; see GET /v1/cloud-accounts"
        )
    return account


@router.get("", response_model=CloudAccountList, responses=responses())
async def list_accounts(principal: Viewer, session: SessionDep) -> CloudAccountList:
    rows = await session.scalars(
        select(CloudAccount)
        .where(CloudAccount.project_id == principal.project_id)
        .order_by(CloudAccount.created_at)
    )
    return CloudAccountList(items=[account_public(a) for a in rows.all()])


@router.get("/{account_id}", response_model=CloudAccountPublic, responses=responses())
async def get_account(
    account_id: str, principal: Viewer, session: SessionDep
) -> CloudAccountPublic:
    return account_public(await project_account(session, principal.project_id, account_id))


@router.delete("/{account_id}", status_code=204, responses=responses(409))
async def delete_account(account_id: str, principal: Editor, session: SessionDep) -> Response:
    """Refused while any cluster that is not Deleted uses the account."""
    account = await project_account(session, principal.project_id, account_id)
    in_use = await session.scalar(
        select(func.count())
        .select_from(Cluster)
        .where(Cluster.cloud_account_id == account_id, Cluster.phase != Phase.DELETED.value)
    )
    if in_use:
        raise HTTPException(
            409, f"cloud account {account.name} is used by {in_use} cluster(s); delete them first"
        )
    await session.delete(account)
    await session.commit()
    return Response(status_code=204)
