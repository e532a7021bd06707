"""The MAAS session layer on its own: keys kept out of messages, bounded waits, the probe."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import maas_session
from activities.maas import MaasActivities
from activities.maas_session import MaasSessions, bounded, scrub
from activities.models import (
    CheckAccountInput,
)
from domain.maas import MaasAccount
from domain.phases import Reason
from tests.gateway.conftest import Maas
from tests.hostile.hostile_maas import serving

KEY = "consumerkey:tokenkey:tokensecret"


def test_scrub_masks_the_key_and_each_part() -> None:
    account = MaasAccount(url="http://maas/MAAS/", api_key=KEY)
    text = scrub(f"echo {KEY} / oauth_signature=%26tokensecret / tokenkey", account)
    assert "tokensecret" not in text
    assert "tokenkey" not in text
    assert "consumerkey" not in text


async def test_a_malformed_key_is_a_named_auth_failure_without_the_key() -> None:
    account = MaasAccount(url="http://127.0.0.1:1/MAAS/", api_key="just-a-secret-string")
    with pytest.raises(ApplicationError) as caught:
        await MaasSessions().session(account)
    assert caught.value.type == Reason.MAAS_AUTH_FAILED
    assert caught.value.non_retryable
    assert "just-a-secret-string" not in str(caught.value)


def echoing_app(upstream: str) -> web.Application:
    """Forwards describe/ to the emulator; answers every other call 500 with the request's
    Authorization header in the body, as a careless proxy's debug page might."""

    async def handle(request: web.Request) -> web.Response:
        if request.path.endswith("/describe/"):
            async with (
                aiohttp.ClientSession() as http,
                http.get(upstream + request.path_qs, headers={"Host": request.host}) as answer,
            ):
                return web.Response(body=await answer.read(), content_type=answer.content_type)
        return web.Response(status=500, text=request.headers.get("Authorization", ""))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def test_an_echoed_key_never_reaches_the_error_message(maas: Maas) -> None:
    upstream = maas.url.removesuffix("/MAAS/")
    secret = maas.account.api_key.split(":")[2]
    async with serving(echoing_app(upstream)) as url:
        account = MaasAccount(url=f"{url}/MAAS/", api_key=maas.account.api_key)
        with pytest.raises(ApplicationError) as caught:
            await ActivityEnvironment().run(
                MaasActivities().check_account, CheckAccountInput(account=account)
            )
    assert caught.value.type == Reason.MAAS_UNREACHABLE
    assert "HTTP 500" in str(caught.value)
    assert secret not in str(caught.value)


async def test_bounded_gives_up_and_heartbeats_while_it_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(maas_session, "HEARTBEAT_EVERY", 0.05)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=1))
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    slow = asyncio.ensure_future(asyncio.sleep(30))

    async def wait() -> None:
        await bounded(slow, 0.5)

    with pytest.raises(TimeoutError):
        await env.run(wait)
    assert len(beats) >= 3
    await asyncio.sleep(0)
    assert slow.cancelled(), "the abandoned call keeps running"


def misbehaving_describe(kind: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        if kind == "hang":
            await asyncio.sleep(3600)
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.mark.parametrize("kind", ["garbage", "hang"])
async def test_probe_marks_a_misbehaving_maas_unreachable(maas: Maas, kind: str) -> None:
    sessions = MaasSessions(call_timeout=5.0, probe_timeout=0.5)
    async with serving(misbehaving_describe(kind)) as url:
        sessions.reachable = {maas.url: False, f"{url}/MAAS/": True}
        assert await asyncio.wait_for(sessions.probe(), 3.0) == {
            maas.url: True,
            f"{url}/MAAS/": False,
        }


async def test_a_hanging_connect_is_bounded_by_the_call_timeout() -> None:
    async with serving(misbehaving_describe("hang")) as url:
        account = MaasAccount(url=f"{url}/MAAS/", api_key=KEY)
        sessions = MaasSessions(call_timeout=0.5)
        with pytest.raises(ApplicationError) as caught:
            await asyncio.wait_for(sessions.session(account), 5.0)
    assert caught.value.type == Reason.MAAS_UNREACHABLE
    assert "within 0.5s" in str(caught.value)
    assert sessions.reachable[account.url] is False


async def test_a_non_maas_describe_is_a_protocol_error() -> None:
    async with serving(misbehaving_describe("garbage")) as url:
        account = MaasAccount(url=f"{url}/MAAS/", api_key=KEY)
        with pytest.raises(ApplicationError) as caught:
            await MaasSessions().session(account)
    assert caught.value.type == Reason.MAAS_PROTOCOL_ERROR
    assert not caught.value.non_retryable
    assert url in str(caught.value)
    assert "text/html" in str(caught.value)
