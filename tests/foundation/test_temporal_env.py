from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from domain.naming import SEARCH_ATTRIBUTES
from tests.support.temporal import new_worker


@workflow.defn(sandboxed=False)
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        await workflow.sleep(timedelta(milliseconds=1))
        return text.upper()


async def test_history_holds_only_ciphertext(client: Client) -> None:
    async with new_worker(client, Echo) as worker:
        handle = await client.start_workflow(
            Echo.run, "super-secret-text", id="echo-1", task_queue=worker.task_queue
        )
        assert await handle.result() == "SUPER-SECRET-TEXT"
    history = await handle.fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert b"binary/encrypted" in raw
    assert b"super-secret-text" not in raw
    assert b"SUPER-SECRET-TEXT" not in raw


async def test_project_search_attributes_are_registered(client: Client) -> None:
    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert {key.name for key in SEARCH_ATTRIBUTES} <= set(listing.custom_attributes)
