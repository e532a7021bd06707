"""The one settings object every metalgate process reads (prefix METALGATE_, optional .env)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.lifecycle import (
    DEFAULT_NODE_SILENCE_SECONDS,
    DEFAULT_SILENCE_SECONDS,
    DEFAULT_TIMEOUTS,
    LifecycleTimeouts,
)
from domain.versions import DEFAULT_KUBERNETES_VERSIONS, KubernetesVersion, SupportedVersions

log = logging.getLogger(__name__)

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
    # Set on a gateway only: its secret (sent as `authorization: Bearer`) and the PEM of the
    # front door's certificate authority, both from its registration answer.
    temporal_api_key: SecretStr | None = None
    temporal_tls_ca_pem: str | None = None

    # Front door: the only Temporal endpoint gateways reach (frontdoor/).
    frontdoor_address: str = Field(
        default="127.0.0.1:7243", description="host:port handed to gateways at registration"
    )
    frontdoor_port: int = 7243
    frontdoor_tls_cert_file: Path | None = None
    frontdoor_tls_key_file: Path | None = None
    frontdoor_ca_file: Path | None = Field(
        default=None,
        description="CA handed to gateways to trust the front door (default: system roots)",
    )
    frontdoor_token_key: SecretStr | None = Field(
        default=None, description="HMAC key binding task tokens to gateways; same on every replica"
    )
    frontdoor_auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="bound on how long a revoked gateway keeps working"
    )

    # Embedded default ports (metalgate up)
    temporal_port: int = 7233
    ui_port: int = 8233
    api_port: int = 8080
    maas_port: int = 5240
    bind_host: str = "127.0.0.1"

    # Observability: each process serves Prometheus metrics on metrics_host:metrics_port
    # when the port is set (`metalgate up` hands every child its own), logs as JSON on ask.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"

    # API
    api_url: str = "http://127.0.0.1:8080"
    api_key: SecretStr | None = None
    bootstrap_admin_key: SecretStr | None = None
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is a SQLite file in the data dir"
    )
    database_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="pooled store connections per process (default 5 SQLite, 10 PG)",
    )
    database_pool_overflow: int | None = Field(
        default=None,
        ge=0,
        description="connections beyond the pool under load (default 10 SQLite, 20 PG)",
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

    # Lifecycle tuning (seconds); every LifecycleTimeouts field is one of these.
    agent_ready_timeout: float = DEFAULT_TIMEOUTS.agent_ready
    deploy_timeout: float = DEFAULT_TIMEOUTS.deploy
    deploy_poll_interval: float = DEFAULT_TIMEOUTS.deploy_poll_interval
    max_deploy_replacements: int = Field(
        default=DEFAULT_TIMEOUTS.max_deploy_replacements,
        ge=0,
        description="machines a create may swap in for ones that failed to deploy",
    )
    agent_silence_timeout: float = DEFAULT_SILENCE_SECONDS
    agent_node_silence_timeout: float = Field(
        default=DEFAULT_NODE_SILENCE_SECONDS,
        gt=0,
        description="after this long without a heartbeat of its own agent (while other nodes "
        "report), a node counts as not Ready and the remediation ladder starts counting",
    )
    gateway_probe_timeout: float = Field(
        default=DEFAULT_TIMEOUTS.gateway_probe,
        description="after this long with no gateway polling, show WaitingForGateway",
    )
    gateway_give_up_timeout: float = Field(
        default=DEFAULT_TIMEOUTS.gateway_give_up,
        description="a saga waiting this long for its gateway fails with GatewayUnavailable",
    )
    maas_call_timeout: float = DEFAULT_TIMEOUTS.maas_call
    command_timeout: float = Field(
        default=DEFAULT_TIMEOUTS.command, description="how long an agent command may run"
    )
    gateway_heartbeat_interval: float = 15.0
    # How long delete waits for MAAS to release the machines, per erase policy: MAAS keeps
    # them owned while Releasing and Disk erasing, and a secure erase takes hours.
    release_timeout_none: float = DEFAULT_TIMEOUTS.release_none
    release_timeout_quick: float = DEFAULT_TIMEOUTS.release_quick
    release_timeout_secure: float = DEFAULT_TIMEOUTS.release_secure
    release_poll_interval: float = DEFAULT_TIMEOUTS.release_poll_interval
    stop_workflows_timeout: float = Field(
        default=DEFAULT_TIMEOUTS.stop_workflows,
        description="how long delete lets the cluster's other workflows close before terminating",
    )
    force_delete_after: float = Field(
        default=900.0,
        ge=0,
        description="seconds a delete must have run, unfinished, before DELETE ?force=true",
    )
    reconcile_interval: float = Field(
        default=120.0, description="seconds between reconciler runs (store against workflows)"
    )

    # Names this control plane in MAAS ownership marks, so installations sharing a MAAS never
    # release each other's machines. Default: made once and kept in the data dir; set it
    # when processes of one installation do not share a data dir.
    installation_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")

    # Node bootstrap: where a node's cloud-init gets Kubernetes and the agent. `{minor}` in a
    # URL becomes the cluster's minor version (v1.30), as pkgs.k8s.io has one repo per minor;
    # an air-gapped site points these at its mirror.
    kubernetes_package_repository: str = Field(
        default="https://pkgs.k8s.io/core:/stable:/{minor}/deb/",
        pattern=r"^https?://\S+$",
        description="a flat apt repository (`deb [signed-by=...] URL /`) with kubelet, kubeadm, kubectl",
    )
    kubernetes_package_key_url: str = Field(
        default="https://pkgs.k8s.io/core:/stable:/{minor}/deb/Release.key",
        pattern=r"^https?://\S+$",
        description="the repository's signing key (ASCII-armoured)",
    )
    agent_package_index: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="a pip index serving metalgate-agent; default: nodes fetch it from api_url",
    )
    kube_vip_image: str = Field(
        default="ghcr.io/kube-vip/kube-vip:v0.8.9",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        description="the kube-vip image announcing a `vip` endpoint",
    )
    bootstrap_token_ttl: float = Field(
        default=86400.0,
        ge=3600.0,
        description="seconds a kubeadm bootstrap token lives; renders rotate it when it nears expiry",
    )

    @model_validator(mode="after")
    def _token_outlives_a_deploy(self) -> Settings:
        # A render hands out a token with at least half its TTL left; a node deploying now
        # must still be able to join with it.
        needed = 2 * (self.deploy_timeout + self.agent_ready_timeout)
        if self.bootstrap_token_ttl <= needed:
            raise ValueError(
                f"METALGATE_BOOTSTRAP_TOKEN_TTL ({self.bootstrap_token_ttl:g}s) must exceed "
                f"twice deploy_timeout + agent_ready_timeout ({needed:g}s)"
            )
        return self

    # Input rules
    kubernetes_versions: list[KubernetesVersion] = Field(
        default=list(DEFAULT_KUBERNETES_VERSIONS),
        min_length=1,
        description="the newest patch of each supported minor; earlier patches are supported",
    )
    idempotency_key_ttl_seconds: float = Field(
        default=86400.0, gt=0, description="how long an Idempotency-Key's answer is replayed"
    )
    audit_retention_days: float = Field(
        default=400.0, gt=0, description="audit log rows older than this are deleted"
    )

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

    def metrics_address(self) -> str | None:
        """`host:port` this process serves metrics on, or None when metrics are off."""
        return f"{self.metrics_host}:{self.metrics_port}" if self.metrics_port else None

    def lifecycle_timeouts(self) -> LifecycleTimeouts:
        """The timeouts every saga is started with (API and reconciler alike)."""
        return LifecycleTimeouts(
            gateway_probe=self.gateway_probe_timeout,
            gateway_give_up=self.gateway_give_up_timeout,
            maas_call=self.maas_call_timeout,
            deploy=self.deploy_timeout,
            deploy_poll_interval=self.deploy_poll_interval,
            agent_ready=self.agent_ready_timeout,
            max_deploy_replacements=self.max_deploy_replacements,
            command=self.command_timeout,
            release_none=self.release_timeout_none,
            release_quick=self.release_timeout_quick,
            release_secure=self.release_timeout_secure,
            release_poll_interval=self.release_poll_interval,
            stop_workflows=self.stop_workflows_timeout,
        )

    def supported_versions(self) -> SupportedVersions:
        return SupportedVersions(self.kubernetes_versions)

    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir() / 'metalgate.db'}"


def secret_file(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
    """The secret kept in `path` (0600, in a 0700 folder), made once by `make`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(make() + "\n")
        log.info("generated the development secret %s", path)
    return path.read_text().strip()


def development_secret(
    settings: Settings, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)
) -> str:
    """A random secret kept in the data dir, so development installs need no setup."""
    return secret_file(settings.resolved_data_dir() / "secrets" / name, make)


def installation_id(settings: Settings) -> str:
    """The configured installation id, or one made once and kept in the data dir."""
    if settings.installation_id:
        return settings.installation_id
    path = settings.resolved_data_dir() / "installation-id"
    if not path.exists():
        path.write_text(f"mg-{secrets.token_hex(6)}\n")
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
