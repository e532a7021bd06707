"""The embedded default: every metalgate process on one machine, each its own child.

`metalgate up`, the end-to-end tests, the benchmarks and the chaos runs all start the stack
through `start_stack`, so they exercise exactly what a new user runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from domain.naming import CONTROL_PLANE_QUEUE, SEARCH_ATTRIBUTES, gateway_queue
from embedded.ports import PortUse, check_ports
from embedded.stack_info import STACK_FILE, StackInfo
from embedded.supervisor import (
    Child,
    ChildSpec,
    ReadyCheck,
    RegistrationFailedError,
    Supervisor,
)
from frontdoor.tls import development_tls
from runtime.settings import Settings, development_secret, secret_file
from runtime.temporal import codec_key_specs, connect, temporal_binary

log = logging.getLogger(__name__)

PCG_NAME = "local-pcg"
TEMPORAL_CLI_ENV = "metalgate"


class StackPorts(BaseModel):
    temporal: int = 7233
    ui: int = 8233
    api: int = 8080
    maas: int = 5240
    agent_runtime: int = 8090
    frontdoor: int | None = None  # None: a free port, kept in the data dir across restarts
    # The first of a block of metrics ports, one per process that serves them (see
    # `metrics_ports`); None: no metrics endpoints.
    metrics: int | None = None


class StackConfig(BaseModel):
    data_dir: Path
    ports: StackPorts = StackPorts()
    host: str = "127.0.0.1"
    maas_machines: int = 24
    deploy_seconds: float = 3.0
    release_seconds: float = 2.0
    emulator_args: list[str] = []
    agent_runtime_args: list[str] = []
    pcg_replicas: int = 1
    system_gateway: bool = True
    agent_runtime: bool = True
    extra_env: dict[str, str] = {}


@dataclass
class Stack:
    config: StackConfig
    supervisor: Supervisor
    info: StackInfo
    client: Client
    admin_key: str
    maas_key: str
    admin_key_was_new: bool = False
    pcg_replicas: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        await self.supervisor.stop_all(last=("temporal",))


def maas_api_key(data_dir: Path) -> str:
    """The emulator's admin key, kept across restarts (MAAS format consumer:token:secret)."""
    return secret_file(
        data_dir / "secrets" / "maas-api-key",
        lambda: ":".join(secrets.token_hex(10) for _ in range(3)),
    )


def _metalgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def _answers_as(url: str, port: int, instance_key: str | None = None) -> ReadyCheck:
    """Ready when the child itself listens on `port` and its health answer is its own."""

    async def check(child: Child) -> bool:
        if not child.listens_on(port):
            return False
        async with httpx.AsyncClient(timeout=2.0) as http:
            response = await http.get(url)
        if response.status_code >= 500:
            return False
        return instance_key is None or response.json().get(instance_key) == child.instance_id

    return check


def _polled(client_ref: list[Client], queue: str, upstream_port: int) -> ReadyCheck:
    """Ready when a poller that started after the child polls `queue` and the child holds a
    connection to `upstream_port` (Temporal, or the front door for a PCG): an old worker
    still polling the queue is not this child."""

    async def check(child: Child) -> bool:
        if not _connected_to(child, upstream_port):
            return False
        response = await client_ref[0].workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client_ref[0].namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return any(
            p.identity.startswith(f"{child.pid}@")
            or p.last_access_time.ToSeconds() >= int(child.started_at)
            for p in response.pollers
        )

    return check


def _listening(port: int) -> ReadyCheck:
    """Ready when the child itself listens on `port` (a gRPC server with no health route)."""

    async def check(child: Child) -> bool:
        return child.listens_on(port)

    return check


def frontdoor_port(data_dir: Path, wanted: int | None) -> int:
    """Registered gateways keep the front door's address, so it must survive a restart."""
    path = data_dir / "secrets" / "frontdoor-port"
    if wanted is None and path.exists():
        return int(path.read_text())
    if wanted is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            wanted = int(probe.getsockname()[1])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(str(wanted))
    return wanted


def _connected_to(child: Child, port: int) -> bool:
    import psutil

    try:
        conns = psutil.Process(child.pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port for c in conns)


def _temporal_up(settings: Settings, port: int) -> ReadyCheck:
    async def check(child: Child) -> bool:
        if not child.listens_on(port):
            return False
        await connect(settings)
        return True

    return check


def _temporal_env_file(data_dir: Path, codec_endpoint: str) -> Path:
    """A `temporal` CLI environment file (flag values by name), readable by this user only."""
    path = data_dir / "secrets" / "temporal-env.yaml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_text(
        yaml.safe_dump({"env": {TEMPORAL_CLI_ENV: {"ui-codec-endpoint": codec_endpoint}}})
    )
    return path


def _boot_deployed(maas_root: str, maas_key: str) -> Callable[[], Awaitable[None]]:
    """After the agent runtime (re)starts, the emulator powers its Deployed machines on again,
    so every emulated node's agent comes back and resumes its heartbeats."""

    async def boot() -> None:
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                response = await http.post(
                    f"{maas_root}/_emulator/boot-deployed",
                    headers={"Authorization": f"Bearer {maas_key}"},
                )
                response.raise_for_status()
        except httpx.HTTPError as error:
            log.warning("could not boot the emulator's deployed machines again: %s", error)
            return
        log.info("booted %d deployed machines again", response.json()["booted"])

    return boot


def metrics_ports(config: StackConfig) -> dict[str, int]:
    """The metrics port of each child that serves metrics: consecutive from `ports.metrics`."""
    if config.ports.metrics is None:
        return {}
    names = ["api", "control-plane-worker"]
    if config.system_gateway:
        names.append("system-gateway")
    names += [f"pcg-{n + 1}" for n in range(config.pcg_replicas)]
    return {name: config.ports.metrics + i for i, name in enumerate(names)}


def port_uses(config: StackConfig, frontdoor: int) -> list[PortUse]:
    """Every port `start_stack` will listen on, with the `metalgate up` flag that moves it."""
    ports = config.ports
    uses = [
        PortUse(frontdoor, "gateway front door", "--frontdoor-port"),
        PortUse(ports.temporal, "Temporal gRPC", "--temporal-port"),
        PortUse(ports.ui, "Temporal Web UI", "--ui-port"),
        PortUse(ports.maas, "MAAS emulator", "--maas-port"),
        PortUse(ports.api, "metalgate API", "--api-port"),
    ]
    if config.agent_runtime:
        uses.append(PortUse(ports.agent_runtime, "agent runtime", "--agent-port"))
    uses += [
        PortUse(port, f"{name} metrics (ports from --metrics-port on)", "--metrics-port")
        for name, port in metrics_ports(config).items()
    ]
    return uses


def _with_metrics(env: dict[str, str], port: int | None) -> dict[str, str]:
    """A child's environment, serving its metrics on `port` when there is one."""
    return {**env, "METALGATE_METRICS_PORT": str(port)} if port else env


async def start_stack(config: StackConfig) -> Stack:
    """Start every process of the embedded default; on failure, stop what was started."""
    host, ports = config.host, config.ports
    data_dir = config.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    door_port = frontdoor_port(data_dir, ports.frontdoor)
    check_ports(host, port_uses(config, door_port))
    api_url = f"http://{host}:{ports.api}"
    settings = Settings(
        data_dir=data_dir,
        temporal_address=f"{host}:{ports.temporal}",
        api_url=api_url,
        temporal_ui_url=f"http://{host}:{ports.ui}",
    )
    admin_key_path = data_dir / "secrets" / "admin-api-key"
    admin_key_was_new = not admin_key_path.exists()
    admin_key = development_secret(settings, "admin-api-key")
    maas_key = maas_api_key(data_dir)
    # The dev server's Web UI sends no credentials; its codec URL carries this token instead.
    ui_codec_token = development_secret(settings, "ui-codec-token")
    codec_key_specs(settings)  # create the development codec key before children race for it
    door_tls = development_tls(data_dir / "secrets" / "frontdoor-tls", [host, "localhost"])
    env = {
        "METALGATE_DATA_DIR": str(data_dir),
        "METALGATE_TEMPORAL_ADDRESS": settings.temporal_address,
        "METALGATE_TEMPORAL_UI_URL": settings.temporal_ui_url,
        "METALGATE_API_URL": api_url,
        "METALGATE_API_PORT": str(ports.api),
        "METALGATE_BOOTSTRAP_ADMIN_KEY": admin_key,
        "METALGATE_UI_CODEC_TOKEN": ui_codec_token,
        "METALGATE_CODEC_CORS_ORIGINS": json.dumps(
            [settings.temporal_ui_url, f"http://localhost:{ports.ui}"]
        ),
        "METALGATE_FRONTDOOR_ADDRESS": f"{host}:{door_port}",
        "METALGATE_FRONTDOOR_TLS_CERT_FILE": str(door_tls.cert),
        "METALGATE_FRONTDOOR_TLS_KEY_FILE": str(door_tls.key),
        "METALGATE_FRONTDOOR_CA_FILE": str(door_tls.ca),
        "METALGATE_METRICS_HOST": host,
        **config.extra_env,
    }
    metrics = metrics_ports(config)
    sup = Supervisor(data_dir / "logs")
    client_ref: list[Client] = []
    maas_url = f"http://{host}:{ports.maas}/MAAS/"
    info = StackInfo(
        api_url=api_url,
        temporal_address=settings.temporal_address,
        temporal_ui_url=settings.temporal_ui_url,
        maas_url=maas_url,
        maas_api_key_file=str(data_dir / "secrets" / "maas-api-key"),
        admin_api_key_file=str(admin_key_path),
        metrics={name: f"http://{host}:{port}/metrics" for name, port in metrics.items()},
    )
    try:
        sa_args = [f"--search-attribute={k.name}=Keyword" for k in SEARCH_ATTRIBUTES]
        await sup.start(
            ChildSpec(
                "temporal",
                [
                    str(temporal_binary()),
                    "server",
                    "start-dev",
                    "--ip",
                    host,
                    "--port",
                    str(ports.temporal),
                    "--ui-port",
                    str(ports.ui),
                    "--db-filename",
                    str(data_dir / "temporal.db"),
                    "--sqlite-pragma",
                    "journal_mode=wal",
                    "--sqlite-pragma",
                    "synchronous=normal",
                    # The codec URL carries a token: it comes from a file, argv is public.
                    "--env-file",
                    str(_temporal_env_file(data_dir, f"{api_url}/codec/ui/{ui_codec_token}")),
                    "--env",
                    TEMPORAL_CLI_ENV,
                    "--ui-disable-news-fetch",
                    "--log-level",
                    "warn",
                    *sa_args,
                ],
                env,
                ready=_temporal_up(settings, ports.temporal),
                # Its SQLite file is in WAL mode: a kill after this loses nothing committed,
                # and Ctrl-C must be done in under 5 s in all.
                stop_timeout=1.5,
            )
        )
        client_ref.append(await connect(settings))
        emulator_args = [
            "maas-emulator",
            "--host",
            host,
            "--port",
            str(ports.maas),
            "--machines",
            str(config.maas_machines),
            "--deploy-seconds",
            str(config.deploy_seconds),
            "--release-seconds",
            str(config.release_seconds),
            "--data-dir",
            str(data_dir / "maas"),
            *config.emulator_args,
        ]
        if config.agent_runtime:
            emulator_args += ["--boot-hook-url", f"http://{host}:{ports.agent_runtime}/hooks"]
        await sup.start(
            ChildSpec(
                "maas-emulator",
                _metalgate(*emulator_args),
                # The key reaches the emulator through its environment: argv is public in ps.
                {**env, "MAAS_EMULATOR_API_KEY": maas_key},
                ready=_answers_as(
                    f"http://{host}:{ports.maas}/_emulator/health", ports.maas, "instance"
                ),
            )
        )
        await sup.start(
            ChildSpec(
                "api",
                _metalgate("server", "api", "--host", host, "--port", str(ports.api)),
                _with_metrics(env, metrics.get("api")),
                ready=_answers_as(f"{api_url}/healthz", ports.api, "instance"),
            )
        )
        await sup.start(
            ChildSpec(
                "control-plane-worker",
                _metalgate("worker", "control-plane"),
                _with_metrics(env, metrics.get("control-plane-worker")),
                ready=_polled(client_ref, CONTROL_PLANE_QUEUE, ports.temporal),
            )
        )
        if config.system_gateway:
            await sup.start(
                ChildSpec(
                    "system-gateway",
                    _metalgate("worker", "system-gateway"),
                    _with_metrics(env, metrics.get("system-gateway")),
                    ready=_polled(client_ref, gateway_queue("system"), ports.temporal),
                )
            )
        if config.agent_runtime:
            await sup.start(
                ChildSpec(
                    "agent-runtime",
                    _metalgate(
                        *("agent", "runtime", "--host", host, "--port", str(ports.agent_runtime)),
                        *config.agent_runtime_args,
                    ),
                    env,
                    ready=_answers_as(
                        f"http://{host}:{ports.agent_runtime}/healthz", ports.agent_runtime
                    ),
                    on_ready=_boot_deployed(f"http://{host}:{ports.maas}", maas_key),
                )
            )
        await sup.start(
            ChildSpec(
                "frontdoor",
                _metalgate("server", "frontdoor", "--host", host, "--port", str(door_port)),
                env,
                ready=_listening(door_port),
            )
        )
        stack = Stack(config, sup, info, client_ref[0], admin_key, maas_key, admin_key_was_new)
        if config.pcg_replicas:
            await _start_pcg(stack, env, door_port, metrics)
        (data_dir / STACK_FILE).write_text(info.model_dump_json(indent=2))
        return stack
    except BaseException:
        await sup.stop_all(last=("temporal",))
        raise


async def _start_pcg(
    stack: Stack, env: dict[str, str], door_port: int, metrics: dict[str, int]
) -> None:
    """Register the local PCG once (its identity persists in the data dir), then run it."""
    data_dir = stack.config.data_dir.resolve()
    config_file = data_dir / "pcg" / "gateway.json"
    if not config_file.exists():
        config_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        async with httpx.AsyncClient(
            base_url=stack.info.api_url,
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=30.0,
        ) as http:
            response = await http.post("/v1/gateways", json={"name": PCG_NAME})
            response.raise_for_status()
            token = response.json()["registration_token"]
        register = _metalgate(
            "gateway",
            "register",
            "--api-url",
            stack.info.api_url,
            "--token",
            token,
            "--config",
            str(config_file),
        )
        proc = await _run(register, env)
        if proc != 0:
            raise RegistrationFailedError(f"registering the local PCG failed (exit {proc})")
    gateway_id = json.loads(config_file.read_text())["gateway_id"]
    stack.info.pcg_gateway_id = gateway_id
    for n in range(stack.config.pcg_replicas):
        name = f"pcg-{n + 1}"
        await stack.supervisor.start(
            ChildSpec(
                name,
                _metalgate("gateway", "run", "--config", str(config_file), "--replica-id", name),
                _with_metrics(env, metrics.get(name)),
                ready=_polled([stack.client], gateway_queue(gateway_id), door_port),
            )
        )
        stack.pcg_replicas.append(name)


async def _run(argv: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, env={**os.environ, **env})
    return await proc.wait()
