"""`metalgate gateway register|run` as real processes, and the system gateway in process."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.models import (
    CHECK_ACCOUNT,
    WAIT_DEPLOYED,
    CheckAccountInput,
    CheckAccountResult,
    WaitDeployedInput,
    WaitDeployedResult,
)
from domain.maas import MaasAccount, maas_key_purpose
from domain.naming import SYSTEM_GATEWAY_ID, gateway_queue, owner_agent_name
from domain.phases import Reason
from domain.sealing import SealingKeyPair, seal
from runtime import system_gateway_keys
from runtime.settings import Settings
from tests.gateway.activity_runner import activity_failure, run_activity
from tests.gateway.conftest import Maas, StartMaas
from tests.gateway.fake_api import FakeApi
from tests.gateway.harness import RunActivity, RunActivityInput
from tests.gateway.test_gateway_worker import gateway, identity_for, workflows
from tests.support.frontdoor import FrontDoorForGateways
from tests.support.ports import free_port
from tests.support.temporal import assert_eventually
from workers.gateway import run_system_gateway
from workers.gateway_config import GatewayConfig, load_config, write_config

REPO = Path(__file__).resolve().parents[2]
PENDING_STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


async def metalgate(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_register_writes_private_config(
    frontdoor: FrontDoorForGateways, codec_keys: list[str], tmp_path: Path
) -> None:
    port = free_port()
    identity = await identity_for(frontdoor, codec_keys, f"http://127.0.0.1:{port}")
    config_path = tmp_path / "etc" / "gateway.json"
    async with FakeApi(identity, "one-time", port) as api:
        args = ["gateway", "register", "--api-url", api.url, "--config", str(config_path)]
        ok = await metalgate(*args, "--token", "one-time", "--temporal-proxy", "proxy:3128")
        out, err = await ok.communicate()
        assert ok.returncode == 0, err.decode()
        reused = await metalgate(*args, "--token", "one-time")
        _, reused_err = await reused.communicate()

    assert identity.gateway_id in out.decode()
    assert identity.gateway_secret not in out.decode() + err.decode()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = load_config(config_path)
    assert config.model_dump(include=set(type(identity).model_fields)) == identity.model_dump()
    assert config.temporal_proxy == "proxy:3128"
    assert [r.hostname for r in api.registrations] == [os.uname().nodename]
    # It made a key pair and sent only the public half; the private one is in the 0600 file.
    keys = config.sealing_keys()
    assert keys is not None
    assert [r.sealing_public_key for r in api.registrations] == [keys.public_key]
    assert keys.private_key not in api.registrations[0].model_dump_json()

    assert reused.returncode == 1
    assert "refused" in reused_err.decode()
    assert load_config(config_path) == config, "a refused registration keeps the old config"


async def test_run_serves_its_queue_and_stops_on_sigterm(
    frontdoor: FrontDoorForGateways,
    client: Client,
    codec_keys: list[str],
    maas: Maas,
    tmp_path: Path,
) -> None:
    identity = await identity_for(frontdoor, codec_keys, f"http://127.0.0.1:{free_port()}")
    config_path = tmp_path / "gateway.json"
    keys = SealingKeyPair.generate()
    write_config(
        config_path, GatewayConfig(**identity.model_dump(), sealing_private_key=keys.private_key)
    )
    purpose = maas_key_purpose(maas.url)
    # What the control plane sends: the key sealed to this gateway, and nothing that opens it.
    sealed = MaasAccount(
        url=maas.url, sealed_api_key=seal(keys.public_key, maas.account.api_key, purpose)
    )
    foreign = MaasAccount(
        url=maas.url,
        sealed_api_key=seal(SealingKeyPair.generate().public_key, maas.account.api_key, purpose),
    )
    process = await metalgate(
        "gateway", "run", "--config", str(config_path), "--replica-id", "cli-1"
    )
    try:
        async with workflows(client) as wf_queue:
            result = await run_activity(
                client,
                wf_queue,
                CHECK_ACCOUNT,
                CheckAccountInput(account=sealed),
                CheckAccountResult,
                activity_queue=identity.task_queue,
                schedule_to_start_seconds=30,
            )
            refused = await activity_failure(
                client,
                wf_queue,
                CHECK_ACCOUNT,
                CheckAccountInput(account=foreign),
                activity_queue=identity.task_queue,
                schedule_to_start_seconds=30,
            )
        assert result.machines == 8
        assert refused.type == Reason.MAAS_AUTH_FAILED.value
        assert "does not open with this gateway's key" in refused.message
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert identity.gateway_secret not in err.decode()


async def test_run_without_config_explains(tmp_path: Path) -> None:
    process = await metalgate("gateway", "run", "--config", str(tmp_path / "missing.json"))
    _, err = await process.communicate()
    assert process.returncode == 1
    assert "metalgate gateway register" in err.decode()


async def test_system_gateway_serves_gateway_system(
    env: WorkflowEnvironment, client: Client, codec_keys: list[str], maas: Maas, tmp_path: Path
) -> None:
    settings = Settings(
        temporal_address=client.service_client.config.target_host,
        temporal_namespace=client.namespace,
        codec_keys=codec_keys,
        data_dir=tmp_path,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_system_gateway(settings, stop))
    try:
        # Its key pair, made at its start: the API seals to the public half it published.
        public_key = await assert_eventually(lambda: _published(settings))
        sealed = MaasAccount(
            url=maas.url,
            sealed_api_key=seal(public_key, maas.account.api_key, maas_key_purpose(maas.url)),
        )
        async with workflows(client) as wf_queue:
            result = await run_activity(
                client,
                wf_queue,
                CHECK_ACCOUNT,
                CheckAccountInput(account=sealed),
                CheckAccountResult,
                activity_queue=gateway_queue(SYSTEM_GATEWAY_ID),
                schedule_to_start_seconds=30,
            )
        assert result.ready_machines == 8
    finally:
        stop.set()
        await running


async def _published(settings: Settings) -> str:
    public_key = system_gateway_keys.public_key(settings)
    assert public_key is not None, "the system gateway has not published its key yet"
    private = settings.resolved_data_dir() / "system-gateway" / "sealing-key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    return public_key


async def test_killed_replica_loses_nothing(
    frontdoor: FrontDoorForGateways,
    client: Client,
    codec_keys: list[str],
    start_maas: StartMaas,
    tmp_path: Path,
) -> None:
    # Long enough that the deployment outlasts the replica's start (a fresh `python -m cli`
    # takes seconds on a loaded machine): the kill must land while the wait is running.
    maas = await start_maas(deploy_seconds=15)
    session = await maas.bones()
    machine = await session.Machines.allocate(agent_name=owner_agent_name("ha"), cpu_count="2")
    await session.Machine.deploy(system_id=machine["system_id"], distro_series="jammy")
    identity = await identity_for(frontdoor, codec_keys, f"http://127.0.0.1:{free_port()}")
    config_path = tmp_path / "gateway.json"
    write_config(config_path, GatewayConfig(**identity.model_dump()))
    doomed = await metalgate("gateway", "run", "--config", str(config_path), "--replica-id", "x")
    try:
        async with workflows(client) as wf_queue:
            wait = WaitDeployedInput(
                account=maas.account,
                cluster_id="ha",
                system_id=machine["system_id"],
                poll_interval_seconds=0.2,
            )
            handle = await client.start_workflow(
                RunActivity.run,
                RunActivityInput(
                    activity=WAIT_DEPLOYED,
                    arg=wait.model_dump(mode="json"),
                    task_queue=identity.task_queue,
                    heartbeat_seconds=1,
                ),
                id=f"test-ha-{machine['system_id']}",
                task_queue=wf_queue,
            )

            async def started() -> None:
                pending = (await handle.describe()).raw_description.pending_activities
                assert pending and pending[0].state == PENDING_STARTED

            await assert_eventually(started, within=20)
            doomed.kill()  # SIGKILL: no graceful shutdown, the activity is simply lost
            await doomed.wait()
            async with gateway(client, identity.task_queue, "survivor") as survivor:
                outcome = await handle.result()
    finally:
        if doomed.returncode is None:
            doomed.kill()
    assert WaitDeployedResult.model_validate(outcome.result).machine.status == "Deployed"
    assert survivor.sessions.reachable == {maas.url: True}, "the survivor finished the wait"
