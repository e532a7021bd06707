"""Temporal history of a whole create holds no plaintext MAAS key or agent token."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain.naming import SIGNAL_AGENT_REPORT, manage_workflow_id
from domain.phases import Phase
from tests.workflows.fakes import MAAS_API_KEY, agent_token, harness, ready_report


async def raw_history(handle: WorkflowHandle[Any, Any]) -> bytes:
    history = await handle.fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_create_history_holds_no_plaintext_secret(client: Client) -> None:
    async with harness(client) as h:
        cluster = h.cluster(workers=2)
        create = await h.start_create(cluster)
        await h.wait_phase(cluster.cluster_id, Phase.BOOTSTRAPPING_CONTROL_PLANE)
        machines = [m.machine() for m in h.maas.owned(cluster.cluster_id)]
        await create.signal(SIGNAL_AGENT_REPORT, ready_report(machines))
        assert (await create.result()).phase == Phase.RUNNING
        # The secrets did travel: the token reached the cloud-init the gateway deployed.
        assert all(agent_token(cluster.cluster_id) in u for u in h.maas.deployed_user_data.values())
        manage = client.get_workflow_handle(manage_workflow_id(cluster.cluster_id))
        await h.stop_management(cluster.cluster_id)

        for handle in (create, manage):
            raw = await raw_history(handle)
            assert b"binary/encrypted" in raw
            for secret in (MAAS_API_KEY, *MAAS_API_KEY.split(":"), agent_token(cluster.cluster_id)):
                assert secret.encode() not in raw, f"{secret!r} in {handle.id} history"
