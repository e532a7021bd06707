"""One stack for front-door tests: the real API and a front door on one store, the session's
dev server behind them, and two projects with a registered gateway each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.gateway import GatewayIdentity
from frontdoor.server import RunningFrontDoor
from runtime.settings import Settings
from runtime.temporal import connect
from tests.api.conftest import Api, ProjectKeys, new_project, temporal_address
from tests.gateway.conftest import maas, start_maas  # noqa: F401  (fixtures)
from tests.support.api_server import api_settings, running_api
from tests.support.frontdoor import frontdoor_settings, running_frontdoor
from workers.gateway_config import GatewayConfig


@dataclass
class Stack:
    api: Api
    frontdoor: RunningFrontDoor

    @property
    def settings(self) -> Settings:
        return self.api.settings

    @property
    def http(self) -> httpx.AsyncClient:
        return self.api.http


@dataclass
class Tenant:
    keys: ProjectKeys
    identity: GatewayIdentity
    client: Client  # this gateway's connection through the front door


@pytest.fixture(scope="module")
async def stack(
    env: WorkflowEnvironment, codec_keys: list[str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("frontdoor")
    settings = api_settings(
        data_dir, temporal_address(env), codec_keys, **frontdoor_settings(data_dir)
    )
    async with running_api(settings) as url, running_frontdoor(settings) as frontdoor:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Stack(Api(url, settings, http), frontdoor)


async def registered_gateway(stack: Stack, keys: ProjectKeys) -> GatewayIdentity:
    made = await stack.http.post(
        "/v1/gateways", json={"name": f"gw-{uuid.uuid4().hex[:6]}"}, headers=keys.editor
    )
    assert made.status_code == 201, made.text
    answer = await stack.http.post(
        "/v1/gateways/register",
        json={"token": made.json()["registration_token"], "hostname": "site", "version": "t"},
    )
    assert answer.status_code == 200, answer.text
    return GatewayIdentity.model_validate(answer.json())


async def gateway_client(identity: GatewayIdentity) -> Client:
    config = GatewayConfig(**identity.model_dump())
    return await connect(config.temporal_settings(), key_specs=identity.codec_keys)


async def new_tenant(stack: Stack) -> Tenant:
    keys = await new_project(stack.api)
    identity = await registered_gateway(stack, keys)
    return Tenant(keys, identity, await gateway_client(identity))


@pytest.fixture(scope="module")
async def tenant_a(stack: Stack) -> Tenant:
    return await new_tenant(stack)


@pytest.fixture(scope="module")
async def tenant_b(stack: Stack) -> Tenant:
    return await new_tenant(stack)
