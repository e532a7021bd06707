"""SaaS mode, and reads while the Temporal server is stopped."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.control_plane import ControlPlaneActivities
from activities.models import IssueAgentTokenInput, RecordStatusInput
from domain.maas import Machine
from domain.naming import SEARCH_ATTRIBUTES
from domain.phases import Phase
from runtime.temporal import data_converter, temporal_binary
from store.db import Database
from tests.api.conftest import temporal_address
from tests.api.standins import STANDIN_WORKFLOWS, check_account_standin
from tests.support.api_server import ADMIN_KEY, api_settings, running_api
from tests.support.temporal import assert_eventually, new_worker

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_saas_mode_refuses_the_system_gateway(
    env: WorkflowEnvironment, codec_keys: list[str], tmp_path
) -> None:
    settings = api_settings(tmp_path, temporal_address(env), codec_keys, mode="saas")
    async with running_api(settings) as url, httpx.AsyncClient(base_url=url) as http:
        body = {
            "name": "acc",
            "maas_url": "http://maas:5240/MAAS/",
            "maas_api_key": "a:b:c",
            "use_system_gateway": True,
        }
        answer = await http.post("/v1/cloud-accounts", json=body, headers=ADMIN)
        assert answer.status_code == 422
        detail = answer.json()["detail"]
        assert detail.startswith("use_system_gateway:")
        assert "private cloud gateway" in detail
        listed = (await http.get("/v1/gateways", headers=ADMIN)).json()["items"]
        assert listed == []
        assert (await http.get("/v1/gateways/system", headers=ADMIN)).status_code == 404


async def test_reads_work_with_temporal_stopped(codec_keys: list[str], tmp_path) -> None:
    """Write through a private dev server, stop it, then read everything back."""
    own = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(codec_keys),
    )
    settings = api_settings(tmp_path, temporal_address(own), codec_keys)
    stopped = False
    try:
        async with (
            running_api(settings) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            # `metalgate doctor` reads the control-plane workers from here.
            assert (await http.get("/readyz")).json()["control_plane_pollers"] == 0
            async with (
                new_worker(own.client, *STANDIN_WORKFLOWS, task_queue="control-plane"),
                new_worker(
                    own.client, activities=[check_account_standin], task_queue="gateway.system"
                ),
            ):
                account = await http.post(
                    "/v1/cloud-accounts",
                    json={
                        "name": "acc",
                        "maas_url": "http://maas/MAAS/",
                        "maas_api_key": "a:b:c",
                        "use_system_gateway": True,
                    },
                    headers=ADMIN,
                )
                assert account.status_code == 201, account.text
                cluster = await http.post(
                    "/v1/clusters",
                    json={"name": "c1", "cloud_account_id": account.json()["id"]},
                    headers=ADMIN,
                )
                assert cluster.status_code == 202
                cluster_id = cluster.json()["id"]

                async def one_worker_polls() -> None:
                    ready = (await http.get("/readyz")).json()
                    assert ready["control_plane_pollers"] == 1, ready

                await assert_eventually(one_worker_polls)
            database = await Database.open(settings)
            writer = ControlPlaneActivities(database.sessions, own.client, settings)
            token = await writer.issue_agent_token(IssueAgentTokenInput(cluster_id=cluster_id))
            await writer.record_status(
                RecordStatusInput(
                    cluster_id=cluster_id,
                    phase=Phase.DEPLOYING_OS,
                    machines=[Machine(system_id="s1", hostname="n1", pool="control-plane")],
                )
            )
            await database.close()
            await own.shutdown()
            stopped = True

            for path in (
                "/v1/clusters",
                f"/v1/clusters/{cluster_id}",
                f"/v1/clusters/{cluster_id}/events",
                "/v1/cloud-accounts",
                "/v1/gateways",
                "/v1/gateways/system",
                "/v1/projects",
            ):
                answer = await http.get(path, headers=ADMIN)
                assert answer.status_code == 200, (path, answer.text)
            ready = (await http.get("/readyz")).json()
            assert ready["status"] == "ready" and ready["temporal"] == "unreachable"
            assert ready["control_plane_pollers"] is None
            gateway = (await http.get("/v1/gateways/system", headers=ADMIN)).json()
            assert gateway["status"] == "offline"
            agent = {"Authorization": f"Bearer {token.token}"}
            beat = {"node": {"hostname": "n1"}}
            # The report is kept in the outbox and signalled once Temporal is back.
            assert (await http.post("/v1/agent/heartbeat", json=beat, headers=agent)).json() == {
                "ok": True,
                "signalled": True,
            }
            delete = await http.delete(f"/v1/clusters/{cluster_id}", headers=ADMIN)
            assert delete.status_code == 503
            assert "Temporal" in delete.json()["detail"]
    finally:
        if not stopped:
            await own.shutdown()
