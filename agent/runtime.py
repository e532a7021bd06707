"""The agent runtime: one process hosting an agent per deployed machine, driven by boot hooks.

The MAAS emulator POSTs a boot-hook event when a machine reaches Deployed (start the agent
its cloud-init would start) or is released (the machine is gone: stop its agent). The
emulator's machines run nothing, so these agents use the simulated backend; each keeps its
state in `<state root>/<system id>`, wiped when the machine is deployed again (a new disk).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import httpx
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from agent.agent import Agent
from agent.api_client import build_http_client
from agent.backends.simulated.backend import SimulatedBackend
from agent.backends.simulated.cluster import ClusterRegistry
from agent.cloudinit import NoBootstrap, bootstrap_from_user_data
from agent.timings import AgentTimings
from domain.agent_wire import AgentBootstrap

log = logging.getLogger(__name__)

BOOT_HOOK_PATH = "/hooks"


class BootHookEvent(BaseModel):
    """The emulator's boot-hook body (see maas_emulator.hooks.HttpHook)."""

    event: Literal["deployed", "released"]
    system_id: str
    hostname: str
    ip_addresses: list[str] = Field(default_factory=list)
    user_data_b64: str = Field(default="", repr=False)


class HookAnswer(BaseModel):
    started: bool = False
    stopped: bool = False
    reason: str = ""


class RunningAgentPublic(BaseModel):
    system_id: str
    hostname: str
    cluster_id: str
    role: str
    ready: bool
    kubelet_version: str
    pending_reports: int


class AgentHost(Protocol):
    """Hosts agents for deployed machines: `AgentRuntime` (real agents) or `Fleet` (light)."""

    def __len__(self) -> int: ...
    async def deployed(self, bootstrap: AgentBootstrap, node_ip: str) -> object: ...
    async def released(self, system_id: str) -> bool: ...
    def public(self) -> list[RunningAgentPublic]: ...
    async def close(self) -> None: ...


@dataclass
class _Running:
    agent: Agent
    task: asyncio.Task[None]


class AgentRuntime:
    """Runs one Agent task per machine; agents with the same API and proxy share a client."""

    def __init__(self, timings: AgentTimings | None = None, state_root: Path | None = None) -> None:
        """`state_root`: a directory per machine for its agent's state (None: in memory)."""
        self.timings = timings or AgentTimings()
        self.state_root = state_root
        self.registry = ClusterRegistry()
        self._running: dict[str, _Running] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    def __len__(self) -> int:
        return len(self._running)

    def agent(self, system_id: str) -> Agent | None:
        running = self._running.get(system_id)
        return running.agent if running else None

    async def deployed(self, bootstrap: AgentBootstrap, node_ip: str) -> Agent:
        """Start the machine's agent, replacing one left from an earlier deployment."""
        await self.released(bootstrap.system_id)
        state_dir = None
        if self.state_root is not None:
            state_dir = self.state_root / bootstrap.system_id
            await asyncio.to_thread(shutil.rmtree, state_dir, True)
        backend = SimulatedBackend.attach(
            bootstrap, self.registry, timings=self.timings, node_ip=node_ip
        )
        agent = Agent(
            bootstrap,
            self._client_for(bootstrap),
            backend,
            state_dir=state_dir,
            timings=self.timings,
        )
        task = asyncio.create_task(agent.run(), name=f"agent {bootstrap.system_id}")
        task.add_done_callback(self._log_crash)
        self._running[bootstrap.system_id] = _Running(agent, task)
        return agent

    async def released(self, system_id: str) -> bool:
        running = self._running.pop(system_id, None)
        if running is None:
            return False
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        return True

    async def close(self) -> None:
        for system_id in list(self._running):
            await self.released(system_id)
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def public(self) -> list[RunningAgentPublic]:
        return [
            RunningAgentPublic(
                system_id=system_id,
                hostname=r.agent.node.hostname,
                cluster_id=r.agent.bootstrap.cluster_id,
                role=r.agent.node.role,
                ready=r.agent.node.ready,
                kubelet_version=r.agent.node.kubelet_version,
                pending_reports=r.agent.pending,
            )
            for system_id, r in self._running.items()
        ]

    def _client_for(self, bootstrap: AgentBootstrap) -> httpx.AsyncClient:
        key = f"{bootstrap.api_url} {bootstrap.proxy.model_dump_json()}"
        if key not in self._clients:
            self._clients[key] = build_http_client(
                bootstrap.api_url,
                bootstrap.proxy,
                timeout=self.timings.request_timeout,
                max_connections=100,
            )
        return self._clients[key]

    @staticmethod
    def _log_crash(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s crashed", task.get_name(), exc_info=task.exception())


RUNTIME_KEY = web.AppKey("runtime", AgentHost)


async def _boot_hook(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    try:
        event = BootHookEvent.model_validate_json(await request.read())
    except ValidationError as error:
        return web.json_response({"detail": error.errors(include_url=False)}, status=422)
    if event.event == "released":
        stopped = await runtime.released(event.system_id)
        log.info("machine %s released; agent stopped: %s", event.system_id, stopped)
        return _answer(HookAnswer(stopped=stopped))
    try:
        user_data = base64.b64decode(event.user_data_b64, validate=True)
        bootstrap = bootstrap_from_user_data(user_data)
    except (binascii.Error, UnicodeDecodeError, NoBootstrap) as error:
        # Not every deployed machine runs our agent; answer 200 so the hook does not retry.
        log.info("machine %s runs no metalgate agent: %s", event.system_id, error)
        return _answer(HookAnswer(reason=str(error)))
    node_ip = event.ip_addresses[0] if event.ip_addresses else "127.0.0.1"
    await runtime.deployed(bootstrap, node_ip)
    log.info("machine %s deployed; agent started for %s", event.system_id, bootstrap.cluster_name)
    return _answer(HookAnswer(started=True))


async def _list_agents(request: web.Request) -> web.Response:
    agents = [a.model_dump(mode="json") for a in request.app[RUNTIME_KEY].public()]
    return web.json_response({"agents": agents})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "agents": len(request.app[RUNTIME_KEY])})


def _answer(answer: HookAnswer) -> web.Response:
    return web.json_response(answer.model_dump(mode="json"))


def build_runtime_app(runtime: AgentHost | None = None) -> web.Application:
    """The boot-hook server; its cleanup stops every agent it started."""
    app = web.Application()
    app[RUNTIME_KEY] = runtime if runtime is not None else AgentRuntime()
    app.router.add_post(BOOT_HOOK_PATH, _boot_hook)
    app.router.add_get("/agents", _list_agents)
    app.router.add_get("/healthz", _healthz)

    async def stop_agents(app: web.Application) -> None:
        await app[RUNTIME_KEY].close()

    app.on_cleanup.append(stop_agents)
    return app


async def serve(host: str, port: int, runtime: AgentHost) -> None:
    """Serve the boot hook until cancelled."""
    runner = web.AppRunner(build_runtime_app(runtime))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("agent runtime listening on http://%s:%d%s", host, port, BOOT_HOOK_PATH)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
