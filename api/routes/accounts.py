"""Cloud accounts: a MAAS reached through one gateway, validated through it before acceptance."""

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
from api.deps import BoxDep, Editor, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import responses
from api.routes.gateways import project_gateway, system_gateway_enabled
from api.schemas.accounts import CloudAccountCreate, CloudAccountList, CloudAccountPublic
from api.temporal_gate import bounded
from api.workflow_errors import TIMEOUT, named_failure
from domain.gateway import ProxySettings
from domain.maas import MaasAccount
from domain.naming import (
    CONTROL_PLANE_QUEUE,
    SYSTEM_GATEWAY_ID,
    SYSTEM_GATEWAY_NAME,
    validate_account_workflow_id,
)
from domain.phases import Phase, Reason
from store.models import CloudAccount, Cluster
from store.secrets import new_id
from store.types import utcnow
from workflows.contracts import VALIDATE_ACCOUNT_WORKFLOW, GatewayRef, ValidateAccountInput

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
        maas_version=info.get("maas_version"),
        zones=info.get("zones", []),
        resource_pools=info.get("resource_pools", []),
        machines=info.get("machines"),
        ready_machines=info.get("ready_machines"),
        validated_at=account.validated_at,
        created_at=account.created_at,
    )


def _offline(name: str) -> HTTPException:
    return HTTPException(
        503,
        f"gateway {name} is offline: start it with `metalgate gateway run` on its host "
        "(or `metalgate up` for the system gateway), then retry",
    )


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
        kind, message = named_failure(exc)
        if kind == Reason.MAAS_AUTH_FAILED:
            raise HTTPException(
                422, f"maas_api_key: {message}; copy the key again from MAAS"
            ) from exc
        if kind == Reason.MAAS_UNREACHABLE:
            raise HTTPException(
                422,
                f"maas_url: {message}; check the URL and the gateway's network",
            ) from exc
        if kind in (TIMEOUT, Reason.GATEWAY_UNAVAILABLE.value):
            raise _offline(gateway.name) from exc
        log.warning("cloud account %s validation failed: %s", account_id, message)
        raise HTTPException(422, f"cloud account validation failed: {message}") from exc


async def _terminate_quietly(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        await handle.terminate("the API stopped waiting for validation")
    except RPCError:
        log.debug("validation workflow %s already closed", handle.id)


@router.post(
    "", status_code=201, response_model=CloudAccountPublic, responses=responses(409, 422, 503)
)
async def create_account(
    body: CloudAccountCreate,
    principal: Editor,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
    client: TemporalDep,
    request: Request,
) -> CloudAccountPublic:
    """Accepted only after its gateway reached MAAS with the key; the key is never returned."""
    if body.use_system_gateway:
        if not system_gateway_enabled(settings):
            raise HTTPException(
                422,
                "use_system_gateway: this control plane runs in saas mode and has no system "
                "gateway; install a private cloud gateway (POST /v1/gateways) and pass its gateway_id",
            )
        gateway_ref = GatewayRef(id=SYSTEM_GATEWAY_ID, name=SYSTEM_GATEWAY_NAME)
    else:
        assert body.gateway_id is not None
        gateway = await project_gateway(session, principal.project_id, body.gateway_id)
        if gateway.registered_at is None:
            # Offline for sure, so no need to wait for the validation to time out.
            raise HTTPException(
                503,
                f"gateway {gateway.name} is offline: it never registered; run its "
                "`metalgate gateway register` command on its host, then `metalgate gateway run`",
            )
        gateway_ref = GatewayRef(
            id=gateway.id, name=gateway.name, proxy=ProxySettings.model_validate(gateway.proxy)
        )
    duplicate = await session.scalar(
        select(CloudAccount.id).where(
            CloudAccount.project_id == principal.project_id, CloudAccount.name == body.name
        )
    )
    if duplicate:
        raise HTTPException(
            409, f"name: a cloud account named {body.name!r} exists; pick another name"
        )
    account_id = new_id("acc")
    maas = MaasAccount(url=body.maas_url, api_key=body.maas_api_key.get_secret_value())
    checked = await _validate(request, client, account_id, maas, gateway_ref)
    row = CloudAccount(
        id=account_id,
        project_id=principal.project_id,
        name=body.name,
        maas_url=body.maas_url,
        maas_api_key_enc=box.encrypt(maas.api_key),
        gateway_id=gateway_ref.id,
        info=checked.model_dump(mode="json"),
        validated_at=utcnow(),
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(
            409, f"name: a cloud account named {body.name!r} exists; pick another name"
        ) from exc
    return account_public(row)


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
