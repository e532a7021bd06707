"""The one settings object every metalgate process reads (prefix METALGATE_, optional .env)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that ship in examples and must never protect a real installation.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "metalgate", "admin"})


class Settings(BaseSettings):
    """Configuration shared by the API, workers, gateway, agent runtime and CLI."""

    model_config = SettingsConfigDict(
        env_prefix="METALGATE_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    environment: Literal["development", "production"] = "development"
    mode: Literal["self-hosted", "saas"] = "self-hosted"
    data_dir: Path = Path(".data")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_ui_url: str = "http://127.0.0.1:8233"

    # Embedded default ports (metalgate up)
    temporal_port: int = 7233
    ui_port: int = 8233
    api_port: int = 8080
    maas_port: int = 5240
    bind_host: str = "127.0.0.1"

    # API
    api_url: str = "http://127.0.0.1:8080"
    api_key: SecretStr | None = None
    bootstrap_admin_key: SecretStr | None = None
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is a SQLite file in the data dir"
    )
    codec_cors_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]
    agent_package_dir: Path | None = Field(
        default=None, description="holds a prebuilt agent wheel (see api/routes/agent_package.py)"
    )

    # Secrets: payload codec keys ("key-id:base64-32-bytes", first one encrypts) and the
    # key that encrypts secrets at rest in the store.
    codec_keys: list[SecretStr] = []
    store_secret_key: SecretStr | None = None
    ui_codec_token: SecretStr | None = Field(
        default=None,
        description="enables /codec/ui/<token>/...: the Web UI's codec endpoint carries it",
    )

    # Lifecycle tuning (seconds)
    agent_ready_timeout: float = 900.0
    deploy_timeout: float = 1800.0
    agent_silence_timeout: float = 120.0
    gateway_probe_timeout: float = Field(
        default=30.0, description="after this long with no gateway polling, show WaitingForGateway"
    )
    gateway_heartbeat_interval: float = 15.0

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "development":
            return self
        for name in ("store_secret_key", "bootstrap_admin_key"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"METALGATE_{name.upper()} is a placeholder; set a random value "
                    "(for example `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                )
        if not self.codec_keys:
            raise ValueError("METALGATE_CODEC_KEYS must be set outside development")
        if self.store_secret_key is None:
            raise ValueError("METALGATE_STORE_SECRET_KEY must be set outside development")
        return self

    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir() / 'metalgate.db'}"


def development_secret(settings: Settings, name: str) -> str:
    """A random secret kept in the data dir, so development installs need no setup."""
    path = settings.resolved_data_dir() / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
