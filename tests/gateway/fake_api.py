"""A tiny HTTP server that answers the gateway's two API routes as the control plane does.

The real routes live in api/; this stands in so the gateway side is tested on its own.
"""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from domain.gateway import GatewayHeartbeat, GatewayIdentity, GatewayRegistration


class FakeApi:
    def __init__(self, identity: GatewayIdentity, token: str, port: int) -> None:
        self.identity = identity
        self.token = token
        self.registrations: list[GatewayRegistration] = []
        self.heartbeats: list[GatewayHeartbeat] = []
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.fail_heartbeats = False
        app = web.Application()
        app.router.add_post("/v1/gateways/register", self._register)
        app.router.add_post("/v1/gateways/{gateway_id}/heartbeat", self._heartbeat)
        self._runner = web.AppRunner(app)

    async def __aenter__(self) -> FakeApi:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()

    async def _register(self, request: web.Request) -> web.Response:
        registration = GatewayRegistration.model_validate_json(await request.read())
        if registration.token != self.token:
            return web.json_response({"detail": "unknown or used token"}, status=401)
        self.registrations.append(registration)
        self.token = ""  # one-time
        return web.json_response(self.identity.model_dump(mode="json"), status=201)

    async def _heartbeat(self, request: web.Request) -> web.Response:
        expected = f"Bearer {self.identity.gateway_secret}"
        if request.match_info["gateway_id"] != self.identity.gateway_id:
            return web.json_response({"detail": "no such gateway"}, status=404)
        if request.headers.get("Authorization") != expected:
            return web.json_response({"detail": "bad secret"}, status=401)
        if self.fail_heartbeats:
            return web.json_response({"detail": "down for maintenance"}, status=503)
        self.heartbeats.append(GatewayHeartbeat.model_validate_json(await request.read()))
        return web.Response(status=204)
