"""A real front door on a free loopback port, in front of the session's dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from domain.gateway import GatewayIdentity
from domain.naming import gateway_queue
from frontdoor.server import RunningFrontDoor, start_frontdoor
from frontdoor.tls import development_tls
from runtime.codec import gateway_key_spec
from runtime.settings import Settings
from store.db import Database
from store.models import Gateway, Project
from store.secrets import hash_token, new_id, new_token
from store.types import utcnow
from tests.support.ports import free_port


def frontdoor_settings(data_dir: Path, **values: Any) -> dict[str, Any]:
    """Settings fields for a front door (and the API that hands out its address)."""
    tls = development_tls(data_dir / "frontdoor-tls", ["127.0.0.1", "localhost"])
    port = free_port()
    return {
        "frontdoor_port": port,
        "frontdoor_address": f"127.0.0.1:{port}",
        "frontdoor_tls_cert_file": tls.cert,
        "frontdoor_tls_key_file": tls.key,
        "frontdoor_ca_file": tls.ca,
        "frontdoor_token_key": SecretStr("test-frontdoor-token-key-0123456789"),
        "frontdoor_auth_cache_seconds": 0.5,
        **values,
    }


@asynccontextmanager
async def running_frontdoor(settings: Settings) -> AsyncIterator[RunningFrontDoor]:
    """Serve on settings.frontdoor_port with the store at settings' database."""
    database = await Database.open(settings)
    running = await start_frontdoor(
        settings, database.sessions, host="127.0.0.1", port=settings.frontdoor_port
    )
    try:
        yield running
    finally:
        await running.stop(grace=1.0)
        await database.close()


class FrontDoorForGateways:
    """A front door with its own store, where tests add gateways without the API."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    async def identity(
        self, api_url: str, codec_keys: list[str], namespace: str = "default"
    ) -> GatewayIdentity:
        """A registered gateway of a new project, as registration would hand it out."""
        gateway_id, secret = new_id("gw"), new_token("mgs")
        async with self.database.sessions.begin() as session:
            project = Project(id=new_id("prj"), name=f"p-{gateway_id}")
            session.add(project)
            await session.flush()
            session.add(
                Gateway(
                    id=gateway_id,
                    project_id=project.id,
                    name=f"test {gateway_id}",
                    secret_hash=hash_token(secret),
                    registered_at=utcnow(),
                )
            )
        assert self.settings.frontdoor_ca_file is not None
        return GatewayIdentity(
            gateway_id=gateway_id,
            name=f"test {gateway_id}",
            task_queue=gateway_queue(gateway_id),
            api_url=api_url,
            gateway_secret=secret,
            frontdoor_address=self.settings.frontdoor_address,
            frontdoor_ca_pem=self.settings.frontdoor_ca_file.read_text(),
            temporal_namespace=namespace,
            # As registration hands it: derived for this gateway alone.
            codec_keys=[gateway_key_spec(codec_keys[0], gateway_id)],
        )


@asynccontextmanager
async def frontdoor_for_gateways(
    data_dir: Path, temporal_address: str, namespace: str
) -> AsyncIterator[FrontDoorForGateways]:
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        temporal_address=temporal_address,
        temporal_namespace=namespace,
        **frontdoor_settings(data_dir),
    )
    async with running_frontdoor(settings):
        database = await Database.open(settings)
        try:
            yield FrontDoorForGateways(settings, database)
        finally:
            await database.close()
