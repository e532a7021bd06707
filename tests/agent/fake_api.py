"""A recording stand-in for the control plane's agent routes, on a real loopback port.

It keeps what it received across restarts, so a test can stop it (an outage), start it
again on the same port and check that every report arrived once and in order.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from domain.agent_wire import (
    RUNNER_ARG,
    AgentAck,
    AgentCommand,
    AgentCommandList,
    AgentHeartbeat,
    AgentStatusReport,
    CommandResult,
)
from tests.support.ports import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FINAL_STATES = frozenset({"succeeded", "failed"})
API_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class Received:
    heartbeats: list[AgentHeartbeat] = field(default_factory=list)
    statuses: list[AgentStatusReport] = field(default_factory=list)
    results: list[tuple[str, CommandResult]] = field(default_factory=list)
    result_keys: list[str] = field(default_factory=list)  # the Idempotency-Key of each result
    idempotency_keys: list[str] = field(default_factory=list)
    command_polls: int = 0
    polled_by: list[str | None] = field(default_factory=list)  # each poll's `node`
    hosts: list[str] = field(default_factory=list)


class FakeAgentApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.received = Received()
        self.commands: dict[str, AgentCommand] = {}
        self.fail_with: int | None = None
        # Drop results on the floor (an answer lost on the way): commands stay listed.
        self.lose_results = False
        # As the API: a command goes to the node it names as runner, any other to this
        # default runner (None: to every poll).
        self.runner: str | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/v1/agent/heartbeat", self._heartbeat)
        app.router.add_post("/v1/agent/status", self._status)
        app.router.add_get("/v1/agent/commands", self._list_commands)
        app.router.add_post("/v1/agent/commands/{id}", self._result)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_command(self, command: AgentCommand) -> None:
        self.commands[command.id] = command

    def results_for(self, command_id: str) -> list[CommandResult]:
        return [result for cid, result in self.received.results if cid == command_id]

    def statuses_for(self, hostname: str) -> list[AgentStatusReport]:
        return [s for s in self.received.statuses if s.node.hostname == hostname]

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.fail_with is not None:
            return web.json_response({"detail": "injected failure"}, status=self.fail_with)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"detail": "bad agent token"}, status=401)
        self.received.hosts.append(request.host)
        key = request.headers.get("Idempotency-Key")
        if key:
            if API_KEY_PATTERN.fullmatch(key) is None:  # what the real API refuses
                return web.json_response({"detail": "bad Idempotency-Key"}, status=422)
            self.received.idempotency_keys.append(key)
        return await handler(request)

    async def _heartbeat(self, request: web.Request) -> web.Response:
        self.received.heartbeats.append(AgentHeartbeat.model_validate(await request.json()))
        return _ack()

    async def _status(self, request: web.Request) -> web.Response:
        self.received.statuses.append(AgentStatusReport.model_validate(await request.json()))
        return _ack()

    async def _list_commands(self, request: web.Request) -> web.Response:
        self.received.command_polls += 1
        node = request.query.get("node")
        self.received.polled_by.append(node)
        listing = AgentCommandList(
            commands=[c for c in self.commands.values() if node is None or self._mine(c, node)]
        )
        return web.json_response(listing.model_dump(mode="json"))

    def _mine(self, command: AgentCommand, node: str) -> bool:
        if self.runner is None and RUNNER_ARG not in command.args:
            return True
        return command.runs_on(node, self.runner)

    async def _result(self, request: web.Request) -> web.Response:
        command_id = request.match_info["id"]
        result = CommandResult.model_validate(await request.json())
        if self.lose_results:
            return _ack()
        self.received.results.append((command_id, result))
        self.received.result_keys.append(request.headers.get("Idempotency-Key", ""))
        if result.state in FINAL_STATES:
            self.commands.pop(command_id, None)
        return _ack()


def _ack() -> web.Response:
    return web.json_response(AgentAck().model_dump(mode="json"))
