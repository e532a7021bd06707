"""A MAAS that answers garbage, 5xx or nothing: every MAAS activity ends with a named failure
in bounded time, never a hang and never a bare exception Temporal would retry forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import models as m
from activities.maas import MaasActivities
from activities.maas_session import MaasSessions
from domain.cluster import NodePool
from domain.maas import MaasAccount
from domain.phases import Reason
from maas_emulator.config import EmulatorConfig
from maas_emulator.server import admin_api_key, build_app
from tests.hostile.hostile_maas import Mode, hostile_app, serving

# Failures a workflow can act on: each has a name and a retry decision.
NAMED = {
    Reason.MAAS_UNREACHABLE,
    Reason.MAAS_AUTH_FAILED,
    Reason.INVALID_CONSTRAINTS,
    Reason.INSUFFICIENT_CAPACITY,
    Reason.MACHINE_DEPLOY_FAILED,
    Reason.MAAS_PROTOCOL_ERROR,
}
# An activity against a MAAS that never answers must give up on its own well before this.
BOUND_SECONDS = 45.0
# The tests shorten the per-call timeout so that a hang costs seconds, not the default.
CALL_TIMEOUT = 2.0

Call = Callable[[MaasActivities, MaasAccount], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "check_account": lambda a, acc: a.check_account(m.CheckAccountInput(account=acc)),
    "find_owned": lambda a, acc: a.find_owned(m.FindOwnedInput(account=acc)),
    "acquire": lambda a, acc: a.acquire_machines(
        m.AcquireMachinesInput(
            account=acc,
            cluster_id="c-hostile",
            request_id="r1",
            pools=[NodePool(name="cp", count=1)],
        )
    ),
    "release": lambda a, acc: a.release_machines(
        m.ReleaseMachinesInput(account=acc, cluster_id="c-hostile", system_ids=["abc123"])
    ),
}


@pytest.fixture(scope="module")
async def emulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    """A real emulator behind the hostile one: (http://host:port, admin key)."""
    data_dir: Path = tmp_path_factory.mktemp("maas")
    app = build_app(EmulatorConfig(data_dir=data_dir, machines=4, deploy_seconds=0, seed=1))
    async with serving(app) as url:
        yield url, admin_api_key(app)


async def _outcome(call: Call, url: str, key: str) -> BaseException | None:
    account = MaasAccount(url=f"{url}/MAAS/", api_key=key)
    activities = MaasActivities(MaasSessions(call_timeout=CALL_TIMEOUT))

    async def invoke() -> Any:
        # Awaited inside the environment, so the activity body runs in activity context.
        return await call(activities, account)

    try:
        await asyncio.wait_for(ActivityEnvironment().run(invoke), BOUND_SECONDS)
    except BaseException as error:
        return error
    return None


# A hang is tried on the connect and on two calls only; each costs CALL_TIMEOUT.
CASES = [
    pytest.param(
        name,
        mode,
        describe_too,
        id=f"{name}-{mode}-{'connect' if describe_too else 'calls'}",
    )
    for name in CALLS
    for mode in Mode
    for describe_too in (True, False)
    if mode != Mode.HANG or name in ("check_account", "find_owned")
]
EXPECTED = {
    Mode.HTML: Reason.MAAS_PROTOCOL_ERROR,
    Mode.WRONG_JSON: Reason.MAAS_PROTOCOL_ERROR,
    Mode.TRUNCATED: Reason.MAAS_PROTOCOL_ERROR,
    Mode.ERROR_500: Reason.MAAS_UNREACHABLE,
    Mode.ERROR_503: Reason.MAAS_UNREACHABLE,
    Mode.HANG: Reason.MAAS_UNREACHABLE,
}


def test_default_call_timeout_is_within_the_bound() -> None:
    assert MaasSessions().call_timeout * 2 < BOUND_SECONDS


@pytest.mark.timeout(BOUND_SECONDS + 30)
@pytest.mark.parametrize(("name", "mode", "describe_too"), CASES)
async def test_hostile_maas_gives_a_named_failure(
    emulator: tuple[str, str], mode: Mode, describe_too: bool, name: str
) -> None:
    upstream, key = emulator
    async with serving(hostile_app(upstream, mode, describe_too=describe_too)) as url:
        error = await _outcome(CALLS[name], url, key)
    assert not isinstance(error, TimeoutError), f"{name} hung on a MAAS that answers {mode}"
    assert isinstance(error, ApplicationError), f"{name} on {mode}: {type(error).__name__}: {error}"
    assert error.type in NAMED, f"{name} on {mode}: unnamed failure {error.type}: {error}"
    assert error.type == EXPECTED[mode], f"{name} on {mode}: {error.type}: {error}"
    assert not error.non_retryable, "a misbehaving MAAS may recover: the failure is retryable"
    assert url in str(error), f"the message does not name the MAAS: {error}"
    for part in key.split(":"):
        assert part not in str(error), "the MAAS key leaked into an error message"
