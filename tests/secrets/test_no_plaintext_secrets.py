"""No secret in plaintext where it does not belong, on a real stack after a cluster's life.

A cluster is created (to Running), its kubeconfig read, then deleted. Then the raw bytes of the
Temporal database, the metalgate store, every log under the data dir and every API response
are searched for the MAAS API key, the agent token and the kubeconfig's private key. Only the
response that asked for the kubeconfig may carry it. The emulator's own database is MAAS's
storage, not ours: MAAS keeps the user data it was given, as a real MAAS does.

The MAAS key is also sealed to each account's gateway: every payload of every workflow,
decoded with all the control plane's codec keys, holds it only sealed; the sealed values open
with their own gateway's private key, not with the other gateway's; and a gateway's codec key
opens only payloads bound for its own queue.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from agent.cloudinit import bootstrap_from_user_data
from cli.api_client import ApiClient
from domain.cluster import ClusterSpec
from domain.maas import maas_key_purpose
from domain.phases import Phase
from domain.sealing import SealingError, SealingKeyPair
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from runtime import system_gateway_keys
from runtime.codec import CodecKeyError, EncryptionCodec
from runtime.settings import Settings
from runtime.temporal import codec_key_specs
from tests.support.ports import free_port
from workers.gateway_config import load_config

pytestmark = pytest.mark.timeout(420)

PHASE_TIMEOUT = 180.0


class RecordingTransport(httpx.HTTPTransport):
    """Keeps every API answer (path, body) so the test can search them afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.answers.append((f"{request.method} {request.url.path}", response.read()))
        return response


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(),
        ui=free_port(),
        api=free_port(),
        maas=free_port(),
        agent_runtime=free_port(),
    )
    config = StackConfig(
        data_dir=tmp_path / "data",
        ports=ports,
        maas_machines=4,
        deploy_seconds=1.0,
        release_seconds=0.5,
        pcg_replicas=1,
        system_gateway=True,
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


def _wait(api: ApiClient, cluster_id: str, phase: Phase) -> dict[str, object]:
    deadline = time.monotonic() + PHASE_TIMEOUT
    while True:
        body = api.get_cluster(cluster_id)
        if body["phase"] == phase:
            return body
        assert body["phase"] != Phase.FAILED or phase == Phase.DELETED, f"cluster failed: {body}"
        assert time.monotonic() < deadline, f"still {body['phase']} after {PHASE_TIMEOUT}s: {body}"
        time.sleep(1.0)


def _cluster_life(stack: Stack, transport: RecordingTransport) -> tuple[set[str], str]:
    """Create, read everything, delete; returns (agent tokens, kubeconfig)."""
    assert stack.info.pcg_gateway_id is not None
    with ApiClient(stack.info.api_url, stack.admin_key, transport=transport) as api:
        account = api.create_account(
            name="secrets-maas",
            maas_url=stack.info.maas_url,
            maas_api_key=stack.maas_key,
            gateway_id=stack.info.pcg_gateway_id,
        )
        # A second account through the system gateway: sealed to that gateway's own key.
        system = api.create_account(
            name="secrets-system",
            maas_url=stack.info.maas_url,
            maas_api_key=stack.maas_key,
            use_system_gateway=True,
        )
        assert account["maas_api_key_sealed"] and system["maas_api_key_sealed"]
        api.get_account(account["id"])
        api.list_accounts()
        cluster = api.create_cluster(ClusterSpec(name="secrets"), cloud_account_id=account["id"])
        _wait(api, cluster["id"], Phase.RUNNING)
        # MAAS forgets the user data on release, so the tokens are read while it is deployed.
        tokens = _agent_tokens(stack.config.data_dir.resolve())
        kubeconfig = api.kubeconfig(cluster["id"])
        api.list_clusters()
        api.cluster_events(cluster["id"])
        api.list_gateways()
        api.get_gateway(stack.info.pcg_gateway_id)
        api.delete_cluster(cluster["id"])
        _wait(api, cluster["id"], Phase.DELETED)
        api.cluster_events(cluster["id"])
    return tokens, kubeconfig


def _agent_tokens(data_dir: Path) -> set[str]:
    """Agent tokens as MAAS received them, in the user data of the machines it deployed."""
    tokens = set()
    for db in (data_dir / "maas").glob("*.sqlite3"):
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT doc FROM machines").fetchall()
        for (doc,) in rows:
            user_data = json.loads(doc).get("user_data_b64")
            if user_data:
                tokens.add(
                    bootstrap_from_user_data(base64.b64decode(user_data).decode()).agent_token
                )
    return tokens


def _kubeconfig_secrets(kubeconfig: str) -> set[str]:
    document = yaml.safe_load(kubeconfig)
    found = set()
    for user in document.get("users", []):
        for key, value in user.get("user", {}).items():
            if key in ("client-key-data", "token", "password") and value:
                found.add(str(value))
    return found


def _scanned_files(data_dir: Path) -> list[Path]:
    """Temporal's database, the store, and every log: everything but MAAS's own storage."""
    files = [p for p in data_dir.rglob("*.log") if p.is_file()]
    for path in data_dir.rglob("*"):
        top = path.relative_to(data_dir).parts[0]
        if path.is_file() and "maas" not in top and (".db" in path.name or "sqlite" in path.name):
            files.append(path)
    return files


async def test_no_secret_in_plaintext(stack: Stack) -> None:
    transport = RecordingTransport()
    agent_tokens, kubeconfig = await asyncio.to_thread(_cluster_life, stack, transport)
    data_dir = stack.config.data_dir.resolve()
    maas_secret = stack.maas_key.split(":")[2]
    assert agent_tokens, "no deployed machine carried an agent token in its user data"
    kube_secrets = _kubeconfig_secrets(kubeconfig)
    assert kube_secrets, "the kubeconfig carries no credential to look for"
    secrets = {
        "MAAS API key": {stack.maas_key, maas_secret},
        "agent token": agent_tokens,
        "kubeconfig credential": kube_secrets,
    }
    await _check_sealed_in_history(stack, {stack.maas_key, maas_secret})
    # Stop first so every log is flushed and the databases hold their last writes.
    await stack.stop()
    files = _scanned_files(data_dir)
    assert any(p.name == "temporal.db" for p in files), files
    leaks = []
    for path in files:
        raw = path.read_bytes()
        leaks += [
            f"{what} in {path.relative_to(data_dir)}"
            for what, values in secrets.items()
            if any(v.encode() in raw for v in values)
        ]
    for where, body in transport.answers:
        for what, values in secrets.items():
            allowed = what == "kubeconfig credential" and where.endswith("/kubeconfig")
            if not allowed and any(v.encode() in body for v in values):
                leaks.append(f"{what} in the answer to {where}")
    assert not leaks, "plaintext secrets found:\n" + "\n".join(leaks)


def _payloads(value: Any) -> Iterator[Payload]:
    """Every Payload inside a history event, however deep (fields, lists, maps)."""
    if isinstance(value, Payload):
        yield value
    elif isinstance(value, Message):
        for _field, inner in value.ListFields():
            yield from _payloads(inner)
    elif isinstance(value, str | bytes | int | float | bool):
        return
    elif callable(getattr(value, "values", None)):
        for inner in value.values():
            yield from _payloads(inner)
    else:
        for inner in value:
            yield from _payloads(inner)


async def _all_payloads(client: Client) -> list[Payload]:
    found: list[Payload] = []
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        for event in (await handle.fetch_history()).events:
            found += _payloads(event)
    return found


async def _check_sealed_in_history(stack: Stack, maas_secrets: set[str]) -> None:
    settings = Settings(_env_file=None, data_dir=stack.config.data_dir.resolve())
    masters = codec_key_specs(settings)
    control_plane = EncryptionCodec(masters)
    payloads = await _all_payloads(stack.client)
    opened = [p.data for p in await control_plane.decode(payloads)]
    # Search attributes are payloads too, plain by design (ids and phases, never secrets).
    encrypted = [p for p in payloads if p.metadata.get("encoding") == b"binary/encrypted"]
    assert encrypted
    # Everything the control plane can open holds the MAAS key only sealed.
    leaks = [secret for secret in maas_secrets for data in opened if secret.encode() in data]
    assert not leaks, "a MAAS key opens with the control plane's codec keys"
    sealed = {m.decode() for data in opened for m in re.findall(rb"mgsealed\.v1\.[-\w=]+", data)}
    pcg_config = load_config(stack.config.data_dir.resolve() / "pcg" / "gateway.json")
    pcg_keys = pcg_config.sealing_keys()
    assert pcg_keys is not None, "the PCG made a key pair at registration"
    system_keys = system_gateway_keys.load_or_create(settings)
    purpose = maas_key_purpose(stack.info.maas_url)

    def opens(keys: SealingKeyPair, value: str) -> bool:
        try:
            return keys.open(value, purpose) == stack.maas_key
        except SealingError:
            return False

    by_pcg = {v for v in sealed if opens(pcg_keys, v)}
    by_system = {v for v in sealed if opens(system_keys, v)}
    assert by_pcg and by_system, "both gateways were handed their account's sealed key"
    assert not by_pcg & by_system, "one gateway's key opens what was sealed to the other"
    assert by_pcg | by_system == sealed
    # The PCG's codec key opens exactly the payloads of its own queue's activities.
    [pcg_codec_key] = pcg_config.codec_keys
    assert pcg_codec_key not in masters
    own = f"/gw/{pcg_config.gateway_id}".encode()
    pcg_codec = EncryptionCodec([pcg_codec_key])
    for payload in encrypted:
        mine = payload.metadata["encryption-key-id"].endswith(own)
        try:
            await pcg_codec.decode([payload])
        except CodecKeyError:
            assert not mine
        else:
            assert mine
    assert any(p.metadata["encryption-key-id"].endswith(own) for p in encrypted)
