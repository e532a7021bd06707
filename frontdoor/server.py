"""The front door's gRPC server: authenticate, apply the policy, forward to Temporal.

Stateless: the store says who a secret belongs to and task tokens carry their own gateway
binding, so any number of replicas can serve behind one address.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from frontdoor.credentials import (
    GatewayAuthenticator,
    GatewayCaller,
    Unauthenticated,
    bearer_secret,
)
from frontdoor.policy import Policy, Refused, Rule
from frontdoor.tokens import TaskTokenSealer
from runtime.settings import Settings, development_secret
from store.db import SessionFactory
from store.models import AuditEntry
from store.types import utcnow

log = logging.getLogger(__name__)

SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
# Metadata passed on to Temporal; the gateway's own credential never is.
FORWARDED_METADATA = ("client-name", "client-version", "supported-server-versions")
MESSAGE_LIMIT = 128 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MESSAGE_LIMIT),
    ("grpc.max_send_message_length", MESSAGE_LIMIT),
]


def token_key(settings: Settings) -> bytes:
    """Every replica must share it; development keeps a random one in the data dir."""
    if settings.frontdoor_token_key is not None:
        return settings.frontdoor_token_key.get_secret_value().encode()
    if settings.environment != "development":
        raise ValueError("METALGATE_FRONTDOOR_TOKEN_KEY must be set outside development")
    return development_secret(settings, "frontdoor-token-key").encode()


def upstream_channel(settings: Settings) -> grpc.aio.Channel:
    if not settings.temporal_tls:
        return grpc.aio.insecure_channel(settings.temporal_address, options=CHANNEL_OPTIONS)

    def read(path: Any) -> bytes | None:
        return path.read_bytes() if path else None

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(settings.temporal_tls_ca_file),
        private_key=read(settings.temporal_tls_key_file),
        certificate_chain=read(settings.temporal_tls_cert_file),
    )
    return grpc.aio.secure_channel(settings.temporal_address, credentials, options=CHANNEL_OPTIONS)


Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class FrontDoorHandler(grpc.GenericRpcHandler):
    """Every method of every service lands here; only the policy's rules are forwarded."""

    def __init__(
        self,
        upstream: grpc.aio.Channel,
        auth: GatewayAuthenticator,
        policy: Policy,
        sessions: SessionFactory,
    ) -> None:
        self._upstream = upstream
        self._auth = auth
        self._policy = policy
        self._sessions = sessions

    async def _audit(self, caller: GatewayCaller | None, method: str, status: int) -> None:
        """Refusals go to the audit log like the API's; a failed write is only logged."""
        try:
            async with self._sessions.begin() as session:
                session.add(
                    AuditEntry(
                        at=utcnow(),
                        actor_kind="gateway" if caller else "anonymous",
                        actor_id=caller.gateway_id if caller else None,
                        project_id=caller.project_id if caller else None,
                        action=f"grpc {method}"[:120],
                        target="",
                        outcome="refused",
                        status_code=status,
                        request_id=uuid.uuid4().hex,
                    )
                )
        except Exception:
            log.exception("front door: could not audit the refusal of %s", method)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        path: str = handler_call_details.method
        service, _, method = path.lstrip("/").partition("/")
        rule = self._policy.rules.get(method) if service == SERVICE else None
        if rule is None:
            return grpc.unary_unary_rpc_method_handler(self._refuse_all(path))
        return grpc.unary_unary_rpc_method_handler(
            self._forward(path, method, rule),
            request_deserializer=rule.request.FromString,
            response_serializer=rule.response.SerializeToString,
        )

    async def _caller(self, context: grpc.aio.ServicerContext, method: str) -> GatewayCaller:
        try:
            return await self._auth.authenticate(bearer_secret(context.invocation_metadata()))
        except Unauthenticated as error:
            log.warning("front door: %s refused, unauthenticated: %s", method, error)
            await self._audit(None, method, 401)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            raise  # abort raises; this line is for the type checker

    async def _deny(
        self, context: grpc.aio.ServicerContext, caller: GatewayCaller, method: str, why: str
    ) -> None:
        log.warning(
            "front door: refused %s for gateway %s (project %s): %s",
            method,
            caller.gateway_id,
            caller.project_id,
            why,
        )
        await self._audit(caller, method, 403)
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"metalgate front door: gateway {caller.gateway_id} may not call {method}: {why}",
        )

    def _refuse_all(self, path: str) -> Behavior:
        async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            caller = await self._caller(context, path)
            await self._deny(
                context,
                caller,
                path.rsplit("/", 1)[-1],
                "a gateway may only poll and answer activity tasks of its own queue",
            )
            return b""

        return refuse

    def _forward(self, path: str, method: str, rule: Rule) -> Behavior:
        call = self._upstream.unary_unary(
            path,
            request_serializer=rule.request.SerializeToString,
            response_deserializer=rule.response.FromString,
        )

        async def forward(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = await self._caller(context, method)
            log.debug("front door: %s for gateway %s", method, caller.gateway_id)
            try:
                rule.check(caller, request)
            except Refused as refused:
                await self._deny(context, caller, method, str(refused))
            metadata = tuple(
                (k, v)
                for k, v in context.invocation_metadata() or ()
                if k.lower() in FORWARDED_METADATA
            )
            try:
                response = await call(request, timeout=context.time_remaining(), metadata=metadata)
            except grpc.aio.AioRpcError as error:
                await context.abort(
                    error.code(), error.details() or "", error.trailing_metadata() or None
                )
            if rule.answer is not None:
                rule.answer(caller, response)
            return response

        return forward


@dataclass
class RunningFrontDoor:
    server: grpc.aio.Server
    upstream: grpc.aio.Channel
    port: int

    async def stop(self, grace: float = 5.0) -> None:
        await self.server.stop(grace)
        await self.upstream.close()


async def start_frontdoor(
    settings: Settings, sessions: SessionFactory, *, host: str, port: int
) -> RunningFrontDoor:
    """Serve TLS on host:port (0 picks a free port) until `stop()`."""
    if settings.frontdoor_tls_cert_file is None or settings.frontdoor_tls_key_file is None:
        raise ValueError(
            "the front door serves TLS only: set METALGATE_FRONTDOOR_TLS_CERT_FILE and "
            "METALGATE_FRONTDOOR_TLS_KEY_FILE"
        )
    credentials = grpc.ssl_server_credentials(
        [
            (
                settings.frontdoor_tls_key_file.read_bytes(),
                settings.frontdoor_tls_cert_file.read_bytes(),
            )
        ]
    )
    upstream = upstream_channel(settings)
    handler = FrontDoorHandler(
        upstream,
        GatewayAuthenticator(sessions, settings.frontdoor_auth_cache_seconds),
        Policy(settings.temporal_namespace, TaskTokenSealer(token_key(settings))),
        sessions,
    )
    server = grpc.aio.server(options=CHANNEL_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_secure_port(f"{host}:{port}", credentials)
    await server.start()
    log.info("front door on %s:%d forwarding to %s", host, bound, settings.temporal_address)
    return RunningFrontDoor(server, upstream, bound)


async def serve(settings: Settings, host: str, port: int, stop: asyncio.Event) -> None:
    """Run one front-door replica until `stop` is set."""
    from store.db import Database

    database = await Database.open(settings)
    try:
        running = await start_frontdoor(settings, database.sessions, host=host, port=port)
        try:
            await stop.wait()
        finally:
            await running.stop()
    finally:
        await database.close()
