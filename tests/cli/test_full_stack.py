"""A cluster's whole life through the CLI, on the stack `metalgate up` starts."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from cli.exit_codes import ExitCode
from embedded.stack import PCG_NAME, Stack, StackConfig, StackPorts, start_stack
from tests.cli.conftest import Cli
from tests.cli.test_commands import EXAMPLE_SPEC
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(360)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    ports = StackPorts(
        temporal=free_port(),
        ui=free_port(),
        api=free_port(),
        maas=free_port(),
        agent_runtime=free_port(),
    )
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        ports=ports,
        maas_machines=6,
        deploy_seconds=1.0,
        release_seconds=0.5,
    )
    started = await start_stack(config)
    try:
        yield started
    finally:
        await started.stop()


def test_cluster_lifecycle_through_the_cli(stack: Stack, tmp_path: Path) -> None:
    cli = Cli(stack.info.api_url, stack.admin_key, tmp_path / "config")
    assert stack.info.pcg_gateway_id is not None
    gateway = cli.json("gateway", "get", stack.info.pcg_gateway_id)
    assert gateway["status"] == "online"

    account = cli.json(
        "account",
        "create",
        "--name",
        "emulator",
        "--maas-url",
        stack.info.maas_url,
        "--maas-api-key-file",
        stack.info.maas_api_key_file,
        "--gateway",
        PCG_NAME,  # names work wherever ids do
    )
    assert account["gateway_id"] == stack.info.pcg_gateway_id
    assert any(a["id"] == account["id"] for a in cli.json("account", "list"))

    # Plan first: asked through the gateway, nothing taken.
    planned = cli.run("cluster", "plan", "-f", str(EXAMPLE_SPEC))
    assert "MAAS can serve all 3 machine(s) asked" in planned.stdout

    # The table view exercises the live rendering; the outcome is in the exit code.
    result = cli.run("cluster", "create", "-f", str(EXAMPLE_SPEC), "--wait", "--timeout", "120")
    assert "is Running" in result.stdout
    assert "/workflows/cluster%2F" in result.stdout and "%2Fcreate" in result.stdout

    name = yaml.safe_load(EXAMPLE_SPEC.read_text())["name"]
    (cluster,) = [c for c in cli.json("cluster", "list", "--phase", "Running") if c["name"] == name]
    assert len(cluster["machines"]) == 3
    assert cli.json("cluster", "get", cluster["id"])["phase"] == "Running"
    assert cli.json("cluster", "get", name)["id"] == cluster["id"]  # a name is as good as an id
    assert cluster["id"] in cli.run("cluster", "get", cluster["id"]).stdout

    kubeconfig = tmp_path / "kubeconfig"
    cli.run("cluster", "kubeconfig", cluster["id"], "-o", str(kubeconfig))
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert "clusters" in yaml.safe_load(kubeconfig.read_text())

    events = cli.json("cluster", "events", cluster["id"])
    assert any(e["phase"] == "Running" for e in events)

    nodes = cli.json("cluster", "nodes", name)
    assert sorted(n["role"] for n in nodes) == ["control-plane", "worker", "worker"]
    assert all(n["ready"] and n["kubelet_version"] and n["zone"] for n in nodes)
    cli.run("cluster", "pause", cluster["id"])
    paused = cli.error(
        "cluster", "upgrade", cluster["id"], "--version", "v1.31.14", code=ExitCode.USAGE
    )
    assert "paused" in paused["detail"]
    cli.run("cluster", "resume", cluster["id"])

    # A second create of the same name is the API's 409: a usage error for scripts.
    cli.error("cluster", "create", "-f", str(EXAMPLE_SPEC), code=ExitCode.USAGE)

    # --wait follows the accepted action to its end: the exit code is its outcome.
    cli.error("cluster", "upgrade", cluster["id"], "--version", "v1.99.0", code=ExitCode.USAGE)
    result = cli.run(
        "cluster", "upgrade", cluster["id"], "--version", "v1.31.14", "--wait", "--timeout", "90"
    )
    assert "succeeded" in result.stdout
    assert cli.json("cluster", "get", cluster["id"])["kubernetes_version"] == "v1.31.14"

    # A worker cordoned, drained and uncordoned by the agent, then repaved: the stack has
    # free machines, so a fresh one joins before the old one is drained and released.
    worker = next(n for n in nodes if n["role"] == "worker")
    cordon = cli.json("cluster", "cordon", name, worker["system_id"])
    drained = cli.run("cluster", "drain", name, worker["hostname"], "--wait", "--timeout", "60")
    assert "succeeded" in drained.stdout and "drained" in drained.stdout
    uncordon = cli.json("cluster", "uncordon", name, worker["hostname"])
    unknown = cli.error("cluster", "drain", name, "ghost-1", code=ExitCode.USAGE)
    assert unknown["errors"][0]["field"] == "path.node"
    # Queued behind the uncordon; the stack has free machines: auto goes expand-first.
    repaved = cli.run(
        "cluster", "repave", name, "--node", worker["hostname"], "--wait", "--timeout", "120"
    )
    assert "succeeded: repaved 1 node(s) of pool workers" in repaved.stdout
    machines = cli.json("cluster", "get", cluster["id"])["machines"]
    assert len(machines) == 3 and worker["system_id"] not in [m["system_id"] for m in machines]
    messages = [e["message"] for e in cli.json("cluster", "events", cluster["id"])]
    for accepted in (cordon, uncordon):
        assert f"{accepted['action_id']} succeeded: {worker['hostname']}" in " ".join(messages)
    assert any("expand-first (auto:" in m for m in messages)
    # The stack has 6 machines and the cluster holds 3: 10 workers cannot be had, as the
    # plan says before anything is tried.
    short = cli.run(
        "cluster", "scale", cluster["id"], "--pool", "workers", "--count", "10", "--dry-run",
        "-o", "json", code=ExitCode.FAILED,
    )  # fmt: skip
    assert "workers: 8 asked" in json.loads(short.stdout)["summary"]
    failed = cli.error(
        "cluster",
        "scale",
        cluster["id"],
        "--pool",
        "workers",
        "--count",
        "10",
        "--wait",
        "--timeout",
        "90",
        code=ExitCode.FAILED,
    )
    assert "InsufficientCapacity" in failed["detail"]
    # Without --wait, exit 0 means accepted: the answer says where its outcome will show.
    accepted = cli.run("cluster", "scale", cluster["id"], "--pool", "workers", "--count", "10")
    assert f"metalgate cluster events {cluster['id']}" in accepted.stdout
    assert "--wait" in accepted.stdout

    final = cli.json("cluster", "delete", cluster["id"], "--wait", "--timeout", "90")
    assert final.get("phase", "Deleted") == "Deleted"
    cli.run("account", "delete", "emulator")
