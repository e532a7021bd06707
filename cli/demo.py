"""`metalgate demo`: the whole story against a running `metalgate up`, checked at every step.

Creates a project and key, registers a PCG and runs it as a child process, adds a cloud
account for the emulator through it, creates a 3-node cluster, upgrades it, shows that the
cluster stays managed with the PCG stopped (an upgrade works, a scale waits for the gateway),
restarts the PCG, kills a worker's machine and shows the remediation ladder replace it by
itself (the old machine quarantined in MAAS), deletes the cluster and shows every machine back
to Ready.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from cli.api_client import ApiClient, ApiError
from domain.agent_wire import ActionKind
from domain.cluster import ClusterSpec, NodePool, RemediationPolicy
from domain.naming import QUARANTINE_TAG
from domain.phases import Phase
from embedded.stack_info import STACK_FILE, StackInfo
from runtime.settings import Settings, get_settings

console = Console(soft_wrap=True)
Json = dict[str, Any]

FIRST_VERSION = "v1.30.4"
UPGRADES = ("v1.31.2", "v1.32.0")
# The demo's workers are repaired after 5 s unhealthy (the default is 300 s), so the ladder's
# steps follow each other quickly; noticing the silent node takes the stack's
# METALGATE_AGENT_NODE_SILENCE_TIMEOUT.
DEMO_REMEDIATION = RemediationPolicy(unhealthy_seconds=5)
LADDER_WORDS = ("etcd member", "failed to deploy", "control-plane endpoint")


class DemoFailedError(RuntimeError):
    """A step did not reach its expected outcome; the message says which and why."""


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    timeout: float = typer.Option(600.0, help="Seconds each waiting step may take"),
    keep: bool = typer.Option(False, help="Keep the cluster instead of deleting it"),
) -> None:
    """Walk through create, upgrade, gateway outage, scale, a dead node replaced by itself and
    delete on `metalgate up`."""
    settings = get_settings()
    try:
        Demo(settings, timeout).run(keep=keep)
    except (DemoFailedError, ApiError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print("[bold green]demo finished: every step reached its expected outcome[/bold green]")


class Demo:
    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        data_dir = settings.resolved_data_dir()
        stack_file = data_dir / STACK_FILE
        if not stack_file.exists():
            raise DemoFailedError(
                f"no running `metalgate up` found: {stack_file} is missing "
                "(start `metalgate up`, or set METALGATE_DATA_DIR to its data dir)"
            )
        self.stack = StackInfo.model_validate_json(stack_file.read_text())
        self.api_url = settings.api_url
        self.admin_key = Path(self.stack.admin_api_key_file).read_text().strip()
        self.maas_key = Path(self.stack.maas_api_key_file).read_text().strip()
        self.pcg_dir = data_dir / "demo"
        self.pcg: subprocess.Popen[bytes] | None = None

    def run(self, *, keep: bool) -> None:
        suffix = secrets.token_hex(3)
        try:
            with ApiClient(self.api_url, self.admin_key) as admin:
                project = self.step(
                    "create a project", lambda: admin.create_project(f"demo-{suffix}")
                )
                key = self.step(
                    "create an admin key for it",
                    lambda: admin.create_api_key(project["id"], name="demo", role="admin"),
                )
            with ApiClient(self.api_url, key["key"]) as api:
                self.flow(api, suffix, keep=keep)
        finally:
            self.stop_pcg()

    def flow(self, api: ApiClient, suffix: str, *, keep: bool) -> None:
        gateway = self.step("create a PCG", lambda: api.create_gateway(f"demo-pcg-{suffix}"))
        console.print(f"    register command: {gateway['register_command']}")
        gateway_id = gateway["gateway"]["id"]
        self.register_pcg(gateway["registration_token"])
        self.start_pcg()
        self.wait("PCG online", lambda: api.get_gateway(gateway_id)["status"] == "online")
        account = self.step(
            "add the emulator's MAAS as a cloud account, validated through the PCG",
            lambda: api.create_account(
                name=f"demo-maas-{suffix}",
                maas_url=self.stack.maas_url,
                maas_api_key=self.maas_key,
                gateway_id=gateway_id,
            ),
        )
        spec = ClusterSpec(
            name=f"demo-{suffix}",
            kubernetes_version=FIRST_VERSION,
            control_plane=NodePool(name="control-plane", count=1),
            worker_pools=[NodePool(name="workers", count=2, remediation=DEMO_REMEDIATION)],
        )
        cluster = self.step(
            "create a 3-node cluster",
            lambda: api.create_cluster(spec, cloud_account_id=account["id"]),
        )
        cluster_id = cluster["id"]
        running = self.follow_phases(api, cluster_id, until={Phase.RUNNING})
        console.print(
            f"    create workflow in the Temporal UI: {running['create_workflow_ui_url']}"
        )
        kubeconfig = self.step("fetch the kubeconfig", lambda: api.kubeconfig(cluster_id))
        console.print("    " + kubeconfig.strip().replace("\n", "\n    "))

        self.upgrade(api, cluster_id, UPGRADES[0])

        self.step("stop the PCG", self.stop_pcg)
        self.upgrade(api, cluster_id, UPGRADES[1], note=" with the PCG stopped")
        self.step(
            "scale workers to 3 with the PCG stopped",
            lambda: api.scale_cluster(cluster_id, pool="workers", count=3),
        )
        self.wait(
            "the scale to wait for the gateway",
            lambda: api.get_cluster(cluster_id)["reason"] == "WaitingForGateway",
        )
        self.step("start the PCG again", self.start_pcg)
        self.wait(
            "the scale to finish",
            lambda: _done_scaling(api.get_cluster(cluster_id), "workers", 3),
        )
        self.remediation(api, cluster_id)
        if keep:
            return
        held = [m["system_id"] for m in api.get_cluster(cluster_id)["machines"]]
        self.step("delete the cluster", lambda: api.delete_cluster(cluster_id))
        self.follow_phases(api, cluster_id, until={Phase.DELETED})
        self.wait(
            f"the cluster's {len(held)} machines back to Ready",
            lambda: asyncio.run(self.machines_ready(held)),
        )
        self.step("remove the cloud account", lambda: api.delete_account(account["id"]))
        self.step("stop and remove the PCG", self.stop_pcg)
        api.delete_gateway(gateway_id)

    def remediation(self, api: ApiClient, cluster_id: str) -> None:
        """Kill a worker's machine; the ladder power-cycles, redeploys, then replaces it."""
        cluster = api.get_cluster(cluster_id)
        old = next(m for m in cluster["machines"] if m["pool"] == "workers")
        name, system_id = old["hostname"], old["system_id"]
        seen = max((e["id"] for e in api.cluster_events(cluster_id)), default=0)
        self.step(
            f"power off {name}'s machine in the emulator, its hardware dead for good",
            lambda: asyncio.run(kill_machine(self.stack.maas_url, self.maas_key, system_id)),
        )

        def replaced() -> bool:
            nonlocal seen
            for event in api.cluster_events(cluster_id, after=seen):
                seen = event["id"]
                if _ladder_event(event["message"]):
                    console.print(f"    event: {event['message']}", markup=False)
            return _replaced(api.get_cluster(cluster_id), system_id, "workers", 3)

        self.wait(f"{name} replaced by itself", replaced)
        self.step(
            f"check in MAAS that {name} is quarantined",
            lambda: asyncio.run(self.quarantined(system_id)),
        )
        self.step(
            f"repair {name} as an operator would: fix it, remove the quarantine tag",
            lambda: asyncio.run(revive_machine(self.stack.maas_url, self.maas_key, system_id)),
        )

    async def quarantined(self, system_id: str) -> None:
        from maas.client import connect

        client = await connect(self.stack.maas_url, apikey=self.maas_key)
        machine = await client.machines.get(system_id)
        tags = [t.name for t in machine.tags]
        if QUARANTINE_TAG not in tags or machine.owner:
            raise DemoFailedError(
                f"{machine.hostname} is {machine.status_name}, owner {machine.owner}, tags {tags}: "
                f"expected released with tag {QUARANTINE_TAG}"
            )
        console.print(f"    {machine.hostname} {machine.status_name}, tags {', '.join(tags)}")

    # --- steps -------------------------------------------------------------------------------

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        console.print(f"[bold]-> {title}[/bold]")
        return action()

    def wait(self, what: str, check: Callable[[], bool]) -> None:
        console.print(f"[bold]-> waiting for {what}[/bold]")
        deadline = time.monotonic() + self.timeout
        while not check():
            if time.monotonic() > deadline:
                raise DemoFailedError(f"gave up waiting for {what} after {self.timeout:.0f}s")
            time.sleep(1.0)

    def follow_phases(self, api: ApiClient, cluster_id: str, *, until: set[Phase]) -> Json:
        """Print each phase change live; fail on Failed unless Failed is what we wait for."""
        deadline = time.monotonic() + self.timeout
        seen = ""
        while True:
            cluster = api.get_cluster(cluster_id)
            line = f"{cluster['phase']}" + (f" ({cluster['reason']})" if cluster["reason"] else "")
            if line != seen:
                console.print(f"    phase {line} {cluster.get('message') or ''}")
                seen = line
            if cluster["phase"] in until:
                return cluster
            if cluster["phase"] == Phase.FAILED:
                raise DemoFailedError(
                    f"cluster failed: {cluster['reason']}: {cluster['message']} ({cluster['hint']})"
                )
            if time.monotonic() > deadline:
                raise DemoFailedError(f"cluster still {line} after {self.timeout:.0f}s")
            time.sleep(0.5)

    def upgrade(self, api: ApiClient, cluster_id: str, version: str, note: str = "") -> None:
        self.step(
            f"upgrade Kubernetes to {version}{note}",
            lambda: api.upgrade_cluster(cluster_id, kubernetes_version=version),
        )
        self.wait(
            f"every node on {version}",
            lambda: _upgraded(api.get_cluster(cluster_id), version),
        )

    # --- the PCG as a child process ----------------------------------------------------------

    @property
    def pcg_config(self) -> Path:
        return self.pcg_dir / "pcg.json"

    def register_pcg(self, token: str) -> None:
        self.pcg_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [
            *_metalgate(), "gateway", "register",
            "--api-url", self.api_url, "--token", token, "--config", str(self.pcg_config),
        ]  # fmt: skip
        self.step("register the PCG with its one-time token", lambda: _check_call(argv))

    def start_pcg(self) -> None:
        log = (self.pcg_dir / "pcg.log").open("ab")
        self.pcg = subprocess.Popen(
            [*_metalgate(), "gateway", "run", "--config", str(self.pcg_config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_pcg(self) -> None:
        if self.pcg is not None and self.pcg.poll() is None:
            self.pcg.terminate()
            try:
                self.pcg.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.pcg.kill()
                self.pcg.wait()
        self.pcg = None

    async def machines_ready(self, system_ids: list[str]) -> bool:
        """Read MAAS itself: Ready, and no metalgate ownership left."""
        from maas.client import connect

        client = await connect(self.stack.maas_url, apikey=self.maas_key)
        machines = [await client.machines.get(system_id) for system_id in system_ids]
        pending = {m.hostname: m.status_name for m in machines if m.status_name != "Ready"}
        if pending:
            return False
        for machine in machines:
            console.print(f"    {machine.hostname} {machine.status_name}, owner {machine.owner}")
        return True


async def kill_machine(maas_url: str, maas_key: str, system_id: str) -> None:
    """Kill an emulator machine: its hardware dead (the `dead_machines` fault, so no power
    cycle or redeploy brings it back), then powered off through MAAS, which stops its agent."""
    from maas.client import connect

    faults_url = maas_url.split("/MAAS/")[0] + "/_emulator/faults"
    headers = {"Authorization": f"Bearer {maas_key}"}
    async with httpx.AsyncClient(timeout=10.0) as http:
        dead = (await http.get(faults_url, headers=headers)).raise_for_status().json()
        wanted = sorted({*dead["dead_machines"], system_id})
        answer = await http.put(faults_url, json={"dead_machines": wanted}, headers=headers)
        answer.raise_for_status()
    client = await connect(maas_url, apikey=maas_key)
    machine = await client.machines.get(system_id)
    await machine.power_off(comment="metalgate demo: the machine dies")


async def revive_machine(maas_url: str, maas_key: str, system_id: str) -> None:
    """Undo `kill_machine` and the quarantine: the machine can be allocated again."""
    from maas.client import connect

    faults_url = maas_url.split("/MAAS/")[0] + "/_emulator/faults"
    headers = {"Authorization": f"Bearer {maas_key}"}
    async with httpx.AsyncClient(timeout=10.0) as http:
        dead = (await http.get(faults_url, headers=headers)).raise_for_status().json()
        wanted = [m for m in dead["dead_machines"] if m != system_id]
        answer = await http.put(faults_url, json={"dead_machines": wanted}, headers=headers)
        answer.raise_for_status()
    client = await connect(maas_url, apikey=maas_key)
    machine = await client.machines.get(system_id)
    for tag in machine.tags:
        if tag.name == QUARANTINE_TAG:
            await machine.tags.remove(tag)


def _metalgate() -> list[str]:
    return [sys.executable, "-m", "cli"]


def _check_call(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise DemoFailedError(f"{' '.join(argv[2:5])} failed: {result.stderr or result.stdout}")


def _upgraded(cluster: Json, version: str) -> bool:
    nodes = cluster.get("nodes") or []
    return (
        cluster["kubernetes_version"] == version
        and cluster["phase"] == Phase.RUNNING
        and bool(nodes)
        and all(n.get("kubelet_version") == version for n in nodes)
    )


def _done_scaling(cluster: Json, pool: str, count: int) -> bool:
    machines = [m for m in cluster["machines"] if m["pool"] == pool]
    return cluster["phase"] == Phase.RUNNING and len(machines) == count


def _replaced(cluster: Json, old: str, pool: str, count: int) -> bool:
    """Running again with `count` machines in `pool`, `old` not among them, every node Ready."""
    machines = [m for m in cluster["machines"] if m["pool"] == pool]
    ready = {n["hostname"] for n in cluster.get("nodes") or [] if n.get("ready")}
    return (
        cluster["phase"] == Phase.RUNNING
        and len(machines) == count
        and all(m["system_id"] != old for m in machines)
        and all(m["hostname"] in ready for m in cluster["machines"])
    )


def _ladder_event(message: str) -> bool:
    """A step of the ladder starting or ending (not the action's own started line)."""
    if message.startswith("remediation "):
        return True
    if message.startswith(f"{ActionKind.REMEDIATE}-"):
        return " started: " not in message
    return any(word in message for word in LADDER_WORDS)
