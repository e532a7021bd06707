"""Gateway lifecycle: a revoked gateway's credential stops at the front door within the
documented bound and at the API at once; a re-issued token replaces the secret."""

from __future__ import annotations

import time
import uuid

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError, RPCStatusCode

from domain.gateway import GatewayIdentity
from domain.phases import Phase, Reason
from store.db import Database
from store.models import Cluster
from tests.api.test_clusters import spec
from tests.frontdoor.conftest import Stack, gateway_client, new_tenant
from tests.support.temporal import assert_eventually


async def add_cluster(stack: Stack, project_id: str, gateway_id: str) -> str:
    cluster_id = f"cl-{uuid.uuid4().hex[:8]}"
    database = await Database.open(stack.settings)
    try:
        async with database.sessions.begin() as session:
            session.add(
                Cluster(
                    id=cluster_id,
                    project_id=project_id,
                    name=cluster_id,
                    active_name=cluster_id,
                    cloud_account_id="acc-x",
                    gateway_id=gateway_id,
                    spec=spec(cluster_id),
                    phase=Phase.RUNNING.value,
                    kubernetes_version="v1.30.0",
                )
            )
    finally:
        await database.close()
    return cluster_id


async def test_revoked_gateway_stops_everywhere(stack: Stack) -> None:
    tenant = await new_tenant(stack)
    gateway_id = tenant.identity.gateway_id
    service = tenant.client.workflow_service
    await service.get_system_info(GetSystemInfoRequest())
    cluster_id = await add_cluster(stack, tenant.keys.project_id, gateway_id)
    beat = {"replica_id": "r1", "version": "t"}
    secret = {"Authorization": f"Bearer {tenant.identity.gateway_secret}"}
    path = f"/v1/gateways/{gateway_id}/heartbeat"
    assert (await stack.http.post(path, json=beat, headers=secret)).status_code == 204

    revoked = await stack.http.post(f"/v1/gateways/{gateway_id}/revoke", headers=tenant.keys.editor)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    started = time.monotonic()
    assert (await stack.http.post(path, json=beat, headers=secret)).status_code == 401

    async def refused() -> None:
        try:
            await service.get_system_info(GetSystemInfoRequest())
        except RPCError as error:
            assert error.status == RPCStatusCode.UNAUTHENTICATED
            return
        raise AssertionError("the front door still lets the revoked gateway in")

    bound = stack.settings.frontdoor_auth_cache_seconds
    await assert_eventually(refused, within=bound + 2)
    assert time.monotonic() - started <= bound + 2

    cluster = await stack.http.get(f"/v1/clusters/{cluster_id}", headers=tenant.keys.viewer)
    assert cluster.status_code == 200, cluster.text
    assert cluster.json()["reason"] == Reason.GATEWAY_REVOKED.value
    again = await stack.http.post(
        f"/v1/gateways/{gateway_id}/registration-token", json={}, headers=tenant.keys.editor
    )
    assert again.status_code == 409, "a revoked gateway stays revoked"


async def test_reissued_token_replaces_the_secret(stack: Stack) -> None:
    tenant = await new_tenant(stack)
    gateway_id = tenant.identity.gateway_id
    reissued = await stack.http.post(
        f"/v1/gateways/{gateway_id}/registration-token", json={}, headers=tenant.keys.editor
    )
    assert reissued.status_code == 201, reissued.text
    token = reissued.json()["registration_token"]
    assert f"--token {token}" in reissued.json()["register_command"]
    answer = await stack.http.post(
        "/v1/gateways/register", json={"token": token, "hostname": "new", "version": "t"}
    )
    assert answer.status_code == 200, answer.text
    fresh = answer.json()
    assert fresh["gateway_id"] == gateway_id
    assert fresh["gateway_secret"] != tenant.identity.gateway_secret
    renewed = await gateway_client(GatewayIdentity.model_validate(fresh))
    await renewed.workflow_service.get_system_info(GetSystemInfoRequest())

    async def old_refused() -> None:
        try:
            await gateway_client(tenant.identity)
        except RuntimeError as error:
            assert "unknown or revoked gateway secret" in str(error)
            return
        raise AssertionError("the replaced secret still works")

    await assert_eventually(old_refused, within=stack.settings.frontdoor_auth_cache_seconds + 2)
