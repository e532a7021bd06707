"""A MAAS URL that is wrong in each way a user can get it wrong: the answer says which step
failed (DNS, refused, TLS, not MAAS, a server error), never what the remote body said. And
account validation rides out transient MAAS errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.maas_session import MaasSessions
from activities.models import (
    CHECK_ACCOUNT,
    CheckAccountInput,
    CheckAccountResult,
)
from domain.lifecycle import GatewayRef
from domain.maas import MaasAccount
from domain.naming import CONTROL_PLANE_QUEUE, VALIDATE_ACCOUNT_WORKFLOW, gateway_queue
from domain.phases import Reason
from tests.hostile.hostile_maas import serving
from tests.support.ports import free_port
from workflows.contracts import ValidateAccountInput

KEY = "consumerkey:tokenkey:tokensecret"
INTERNAL = "INTERNAL-ADMIN-PAGE do-not-leak"


async def probe_failure(url: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await MaasSessions(call_timeout=5.0).session(MaasAccount(url=url, api_key=KEY))
    return caught.value


async def test_a_host_that_does_not_resolve_is_named_dns() -> None:
    failure = await probe_failure("http://no-such-maas.invalid:5240/MAAS/")
    assert failure.type == Reason.MAAS_UNREACHABLE
    assert "DNS" in str(failure) and "does not resolve" in str(failure), failure


async def test_a_closed_port_is_named_refused() -> None:
    failure = await probe_failure(f"http://127.0.0.1:{free_port()}/MAAS/")
    assert failure.type == Reason.MAAS_UNREACHABLE
    assert "connection refused" in str(failure), failure


def internal_service(status: int = 200) -> web.Application:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(
            status=status, text=f"<html>{INTERNAL}</html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def test_https_to_a_plain_http_server_is_named_tls() -> None:
    async with serving(internal_service()) as url:
        failure = await probe_failure(url.replace("http://", "https://") + "/MAAS/")
    assert failure.type == Reason.MAAS_UNREACHABLE
    assert "TLS" in str(failure), failure


@pytest.mark.parametrize(("status", "kind"), [(200, Reason.MAAS_PROTOCOL_ERROR), (404, None)])
async def test_another_service_is_named_not_maas_without_its_body(
    status: int, kind: str | None
) -> None:
    async with serving(internal_service(status)) as url:
        failure = await probe_failure(f"{url}/MAAS/")
    assert failure.type == Reason.MAAS_PROTOCOL_ERROR
    assert "not MAAS" in str(failure) and "HTML page" in str(failure), failure
    assert INTERNAL not in str(failure)
    assert "do-not-leak" not in str(failure)


async def test_a_server_error_page_is_not_echoed() -> None:
    async with serving(internal_service(503)) as url:
        failure = await probe_failure(f"{url}/MAAS/")
    assert failure.type == Reason.MAAS_UNREACHABLE
    assert "HTTP 503" in str(failure)
    assert "do-not-leak" not in str(failure)


# --- account validation against transient errors ---------------------------------------------


class Flaky:
    """CHECK_ACCOUNT that fails `failures` times with a MAAS 503, then describes MAAS."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    @activity.defn(name=CHECK_ACCOUNT)
    async def check(self, inp: CheckAccountInput) -> CheckAccountResult:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ApplicationError(
                f"{inp.account} answered Version.read with HTTP 503",
                type=Reason.MAAS_UNREACHABLE.value,
            )
        return CheckAccountResult(
            maas_version="2.2.0", zones=[], resource_pools=[], tags=[], machines=0, ready_machines=0
        )


async def validate(env: WorkflowEnvironment, flaky: Flaky, wait: float) -> Any:
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=gateway_queue(gateway_id), activities=[flaky.check]):
        return await env.client.execute_workflow(
            VALIDATE_ACCOUNT_WORKFLOW,
            ValidateAccountInput(
                account=MaasAccount(url="http://maas:5240/MAAS/", api_key=KEY),
                gateway=GatewayRef(id=gateway_id, name="flaky"),
                wait_seconds=wait,
            ),
            id=f"validate-{gateway_id}",
            task_queue=CONTROL_PLANE_QUEUE,
            result_type=CheckAccountResult,
        )


async def test_validation_retries_transient_maas_errors(
    env: WorkflowEnvironment, control_plane_standins: Worker
) -> None:
    flaky = Flaky(failures=3)
    result = await validate(env, flaky, wait=20.0)
    assert result.maas_version == "2.2.0"
    assert flaky.attempts == 4


async def test_validation_gives_up_on_a_lasting_outage_in_bounded_time(
    env: WorkflowEnvironment, control_plane_standins: Worker
) -> None:
    flaky = Flaky(failures=10_000)
    with pytest.raises(WorkflowFailureError) as caught:
        await validate(env, flaky, wait=2.0)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == Reason.MAAS_UNREACHABLE
    assert "HTTP 503" in cause.message and "cannot reach MAAS" in cause.message
    assert flaky.attempts > 2
