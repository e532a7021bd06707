"""Hostile callers of a real stack's API: spent and expired tokens, borrowed agent tokens,
oversized and malformed bodies, specs at and past the limits, and schemathesis with every
kind of key. Each gets a clear 4xx or a named failure: never a 5xx, a hang or a leak."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agent.cloudinit import bootstrap_from_user_data
from cli.api_client import ApiClient
from domain.phases import Phase, Reason
from embedded.stack import Stack, StackConfig, StackPorts, start_stack
from tests.chaos.maas_watch import MaasWatch, held
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(300)

PHASE_TIMEOUT = 150.0


@dataclass
class World:
    stack: Stack
    account_id: str
    project_id: str
    keys: dict[str, str]
    agent_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.stack.info.api_url

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def api(self) -> ApiClient:
        return ApiClient(self.url, self.stack.admin_key)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    ports = StackPorts(
        temporal=free_port(),
        ui=free_port(),
        api=free_port(),
        maas=free_port(),
        agent_runtime=free_port(),
    )
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("hostile") / "data",
        ports=ports,
        maas_machines=6,
        deploy_seconds=1.0,
        release_seconds=0.5,
        pcg_replicas=1,
        system_gateway=False,
    )
    stack = await start_stack(config)
    try:
        yield await asyncio.to_thread(_populate, stack)
    finally:
        await stack.stop()


def _populate(stack: Stack) -> World:
    """An account on the PCG, and keys of every role in a project plus another project's."""
    assert stack.info.pcg_gateway_id is not None
    with ApiClient(stack.info.api_url, stack.admin_key) as api:
        account = api.create_account(
            name="hostile-maas",
            maas_url=stack.info.maas_url,
            maas_api_key=stack.maas_key,
            gateway_id=stack.info.pcg_gateway_id,
        )
        project = api.create_project("hostile-a")
        other = api.create_project("hostile-b")
        keys = {
            "admin": stack.admin_key,
            "viewer": api.create_api_key(project["id"], name="v", role="viewer")["key"],
            "editor": api.create_api_key(project["id"], name="e", role="editor")["key"],
            "other-project": api.create_api_key(other["id"], name="o", role="admin")["key"],
        }
    return World(stack, str(account["id"]), str(project["id"]), keys)


def _cluster_body(world: World, name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "cloud_account_id": world.account_id, **overrides}


def _wait(world: World, cluster_id: str, phases: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + PHASE_TIMEOUT
    with world.api() as api:
        while True:
            body = api.get_cluster(cluster_id)
            if body["phase"] in phases:
                return body
            assert time.monotonic() < deadline, f"{cluster_id} still {body['phase']}: {body}"
            time.sleep(1.0)


def _delete(world: World, cluster_id: str) -> None:
    with world.api() as api:
        api.delete_cluster(cluster_id)
    _wait(world, cluster_id, {Phase.DELETED})


def _agent_tokens(world: World) -> dict[str, str]:
    """cluster id -> agent token, read from the user data MAAS holds for deployed machines."""
    tokens = {}
    db = world.stack.config.data_dir.resolve() / "maas"
    for path in db.glob("*.sqlite3"):
        with sqlite3.connect(path) as conn:
            for (doc,) in conn.execute("SELECT doc FROM machines").fetchall():
                user_data = json.loads(doc).get("user_data_b64")
                if user_data:
                    boot = bootstrap_from_user_data(base64.b64decode(user_data).decode())
                    tokens[boot.cluster_id] = boot.agent_token
    return tokens


# --- gateway registration tokens ---------------------------------------------------------


def _register(world: World, token: str) -> httpx.Response:
    with world.http() as http:
        body = {"token": token, "hostname": "hostile", "version": "0.0.0"}
        return http.post("/v1/gateways/register", json=body)


def test_registration_token_works_once(world: World) -> None:
    with world.api() as api:
        token = api.create_gateway("hostile-once")["registration_token"]
    assert _register(world, token).status_code == 200
    again = _register(world, token)
    assert again.status_code == 401, again.text
    assert "token" in again.json()["detail"]


def test_expired_registration_token_is_refused(world: World) -> None:
    with world.api() as api:
        created = api.create_gateway("hostile-expired", token_ttl_seconds=60)
    store = world.stack.config.data_dir.resolve() / "metalgate.db"
    # A minute is the shortest TTL the API grants; age the token in the store instead of waiting.
    with sqlite3.connect(store, timeout=30) as conn:
        conn.execute(
            "UPDATE gateways SET token_expires_at = ? WHERE id = ?",
            ("2000-01-01 00:00:00.000000", created["gateway"]["id"]),
        )
    answer = _register(world, created["registration_token"])
    assert answer.status_code == 401, answer.text


def test_garbage_registration_tokens(world: World) -> None:
    for token in ["", "x" * 10_000, "mgr_\x00\x01", "' OR 1=1 --", "🦀" * 100]:
        answer = _register(world, token)
        assert answer.status_code in (401, 422), (token[:20], answer.status_code, answer.text)


# --- agent tokens --------------------------------------------------------------------------


def test_agent_token_is_bound_to_its_cluster(world: World) -> None:
    ids = []
    with world.api() as api:
        for name in ("agent-a", "agent-b"):
            ids.append(api.create_cluster_raw(_cluster_body(world, name))["id"]) if hasattr(
                api, "create_cluster_raw"
            ) else ids.append(
                api.request("POST", "/v1/clusters", json=_cluster_body(world, name))["id"]
            )
    a, b = ids
    for cluster_id in ids:
        _wait(world, cluster_id, {Phase.RUNNING})
    tokens = _agent_tokens(world)
    world.agent_tokens.update(tokens)
    with world.api() as api:
        api.upgrade_cluster(b, kubernetes_version="v1.31.2")
    with world.http(tokens[b]) as as_b:
        commands = as_b.get("/v1/agent/commands").json()["commands"]
    assert commands, "the upgrade of b queued no agent command"
    with world.http(tokens[a]) as as_a:
        for command in commands:
            answer = as_a.post(f"/v1/agent/commands/{command['id']}", json={"state": "failed"})
            assert answer.status_code == 404, answer.text
        assert all(
            c["id"] not in {x["id"] for x in commands}
            for c in as_a.get("/v1/agent/commands").json()["commands"]
        )
        # An agent token is no user key: the user routes do not know it.
        for path in (
            f"/v1/clusters/{b}",
            f"/v1/clusters/{a}",
            "/v1/clusters",
            f"/v1/clusters/{b}/kubeconfig",
        ):
            assert as_a.get(path).status_code == 401, path
    # A user key is no agent token.
    with world.http(world.stack.admin_key) as admin:
        assert admin.get("/v1/agent/commands").status_code == 401
    for cluster_id in ids:
        _delete(world, cluster_id)


def test_a_running_cluster_refuses_hostile_versions_nodes_and_kubeconfigs(world: World) -> None:
    """The issue's walk-through on a real stack: a newline version, skips, downgrades, phantom
    nodes and a second kubeconfig are refused, and delete still ends in Deleted."""
    body = _cluster_body(world, "hostile-walk", worker_pools=[{"name": "w", "count": 1}])
    with world.http(world.stack.admin_key) as http:
        created = http.post("/v1/clusters", json=body)
        assert created.status_code == 202, created.text
        cluster_id = created.json()["id"]
        base = f"/v1/clusters/{cluster_id}"
        running = _wait(world, cluster_id, {Phase.RUNNING})
        hostnames = sorted(m["hostname"] for m in running["machines"])
        for version in ("v1.99.1\n", "v1.32.0", "v1.30.3", "v1.99.999"):
            answer = http.post(f"{base}/upgrade", json={"kubernetes_version": version})
            assert answer.status_code == 422, (version, answer.text)
            assert answer.json()["errors"][0]["field"] == "body.kubernetes_version"
        strict = http.post(f"{base}/scale", json={"pool": "w", "count": True})
        assert strict.status_code == 422 and "JSON integer" in strict.text
        kubeconfig = http.get(f"{base}/kubeconfig")
        assert kubeconfig.status_code == 200, kubeconfig.text
        token = _agent_tokens(world)[cluster_id]
        with world.http(token) as agent:
            phantom = {"node": {"hostname": "phantom-1", "ready": True}}
            answer = agent.post("/v1/agent/heartbeat", json=phantom)
            assert answer.status_code == 422 and "phantom-1" in answer.text
            evil = {
                "node": {"hostname": hostnames[0], "role": "control-plane", "ready": True},
                "kubeconfig": "apiVersion: v1\nclusters: [{server: https://evil:6443}]\n",
            }
            assert agent.post("/v1/agent/status", json=evil).status_code == 409
        after = http.get(base).json()
        assert after["kubernetes_version"] == "v1.30.4"
        assert sorted(n["hostname"] for n in after["nodes"]) == hostnames
        assert http.get(f"{base}/kubeconfig").json() == kubeconfig.json()
        assert http.delete(base).status_code == 202
        assert http.get(f"{base}/kubeconfig").status_code in (409, 410)
    _wait(world, cluster_id, {Phase.DELETED})
    with world.http(world.stack.admin_key) as http:
        assert http.get(f"/v1/clusters/{cluster_id}/kubeconfig").status_code == 410


# --- bodies --------------------------------------------------------------------------------


def test_oversized_bodies_are_413(world: World) -> None:
    big = json.dumps(_cluster_body(world, "big", padding="x" * (2 * 1024 * 1024)))
    with world.http(world.stack.admin_key) as http:
        for path in (
            "/v1/clusters",
            "/v1/projects",
            "/v1/gateways/register",
            "/v1/agent/heartbeat",
        ):
            answer = http.post(path, content=big, headers={"Content-Type": "application/json"})
            assert answer.status_code == 413, (path, answer.status_code)


def test_oversized_body_without_content_length_is_413(world: World) -> None:
    """A chunked body announces no length: the limit must hold while it streams."""

    def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 65536

    with world.http(world.stack.admin_key) as http:
        answer = http.post(
            "/v1/projects", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 413, answer.status_code


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not json", b"{this is not json", "application/json"),
    ("truncated", b'{"name": "x", "cloud_account_id": "', "application/json"),
    ("array", b"[1, 2, 3]", "application/json"),
    ("null", b"null", "application/json"),
    ("not utf-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("form", b"name=x&cloud_account_id=y", "application/x-www-form-urlencoded"),
    ("deep", b"[" * 5000 + b"]" * 5000, "application/json"),
    (
        "huge number",
        b'{"name": "x", "control_plane": {"name": "cp", "count": 1' + b"0" * 5000 + b"}}",
        "application/json",
    ),
    ("nul in name", b'{"name": "a\\u0000b", "cloud_account_id": "x"}', "application/json"),
]


@pytest.mark.parametrize(("what", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_4xx(world: World, what: str, body: bytes, content_type: str) -> None:
    with world.http(world.stack.admin_key) as http:
        for path in ("/v1/clusters", "/v1/projects", "/v1/cloud-accounts", "/v1/agent/status"):
            answer = http.post(path, content=body, headers={"Content-Type": content_type})
            assert 400 <= answer.status_code < 500, (
                what,
                path,
                answer.status_code,
                answer.text[:300],
            )
            assert "detail" in answer.json(), (what, path)


# --- cluster specs at and past the limits --------------------------------------------------

REFUSED_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("0 control-plane nodes", {"control_plane": {"name": "cp", "count": 0}}),
    ("1,000 workers in a pool", {"worker_pools": [{"name": "w", "count": 1000}]}),
    (
        "1,000 nodes over pools",
        {"worker_pools": [{"name": f"w{i}", "count": 200} for i in range(5)]},
    ),
    ("negative count", {"worker_pools": [{"name": "w", "count": -1}]}),
    (
        "impossible memory bound",
        {"control_plane": {"name": "cp", "count": 1, "constraints": {"min_memory_mib": 10**12}}},
    ),
    (
        "malformed tag",
        {
            "control_plane": {
                "name": "cp",
                "count": 1,
                "constraints": {"tags": ["no spaces allowed"]},
            }
        },
    ),
    ("unknown field", {"nodes": 3}),
    ("bad version", {"kubernetes_version": "latest"}),
    ("bad name", {"name": "Not_A_DNS_Label"}),
]


@pytest.mark.parametrize(("what", "change"), REFUSED_SPECS, ids=[r[0] for r in REFUSED_SPECS])
def test_specs_past_the_limits_are_422(world: World, what: str, change: dict[str, Any]) -> None:
    with world.http(world.stack.admin_key) as http:
        answer = http.post("/v1/clusters", json={**_cluster_body(world, "limits"), **change})
    assert answer.status_code == 422, (what, answer.status_code, answer.text)
    assert answer.json()["detail"], what


# Valid in form, impossible in this MAAS: accepted, then Failed with a named reason, nothing held.
IMPOSSIBLE_SPECS: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "unknown tag",
        {"control_plane": {"name": "cp", "count": 1, "constraints": {"tags": ["no-such-tag"]}}},
        {Reason.INVALID_CONSTRAINTS},
    ),
    (
        "unknown zone",
        {"control_plane": {"name": "cp", "count": 1, "constraints": {"zone": "no-such-zone"}}},
        {Reason.INVALID_CONSTRAINTS},
    ),
    (
        "impossible memory",
        {
            "control_plane": {
                "name": "cp",
                "count": 1,
                "constraints": {"min_memory_mib": 64 * 1024 * 1024},
            }
        },
        {Reason.INSUFFICIENT_CAPACITY},
    ),
    (
        "more machines than MAAS has",
        {"worker_pools": [{"name": "w", "count": 200}]},
        {Reason.INSUFFICIENT_CAPACITY},
    ),
]


@pytest.mark.parametrize(
    ("what", "change", "reasons"), IMPOSSIBLE_SPECS, ids=[r[0] for r in IMPOSSIBLE_SPECS]
)
async def test_impossible_specs_fail_with_a_named_reason(
    world: World, what: str, change: dict[str, Any], reasons: set[str]
) -> None:
    name = what.replace(" ", "-").replace(",", "")
    with world.http(world.stack.admin_key) as http:
        answer = http.post("/v1/clusters", json=_cluster_body(world, name, **change))
    if 400 <= answer.status_code < 500:
        return  # refusing up front is as good as a named failure
    assert answer.status_code == 202, (what, answer.status_code, answer.text)
    cluster_id = answer.json()["id"]
    body = await asyncio.to_thread(_wait, world, cluster_id, {Phase.FAILED, Phase.RUNNING})
    assert body["phase"] == Phase.FAILED, (what, body)
    assert body["reason"] in reasons, (what, body["reason"], body["message"])
    await asyncio.to_thread(_delete, world, cluster_id)
    machines = await MaasWatch(world.stack.info.maas_url, world.stack.maas_key).machines()
    assert not [m["system_id"] for m in machines if held(m)], f"{what} left machines held"


# --- schemathesis with every kind of key -----------------------------------------------------

EXAMPLES_PER_OPERATION = 8


def _fuzz(world: World, label: str, key: str | None) -> list[str]:
    """Bounded schemathesis pass over every operation with one key; the 5xx it met."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_url(f"{world.url}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    errors: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            errors.append(f"{label}: the OpenAPI document has an invalid operation: {result.err()}")
            continue
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def check(case: Any) -> None:
            response = case.call(base_url=world.url, headers=headers, timeout=30)
            if response.status_code >= 500 and not _named_unavailable(response):
                errors.append(
                    f"{label}: {case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        check()
    return errors


def _named_unavailable(response: Any) -> bool:
    """A 503 that says which dependency is down and what to do (e.g. an offline gateway) is an
    answer, not a server error."""
    if response.status_code != 503:
        return False
    try:
        return bool(response.json().get("detail"))
    except ValueError:
        return False


async def test_schemathesis_finds_no_server_error_with_any_key(world: World) -> None:
    kinds: dict[str, str | None] = {**world.keys, "none": None}
    # Revoked by now (its cluster was deleted): still a key of the wrong kind everywhere.
    if world.agent_tokens:
        kinds["agent token"] = next(iter(world.agent_tokens.values()))
    errors: list[str] = []
    for label, key in kinds.items():
        errors += await asyncio.to_thread(_fuzz, world, label, key)
    assert not errors, "\n".join(errors[:40])
