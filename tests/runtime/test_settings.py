from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.lifecycle import DEFAULT_TIMEOUTS, LifecycleTimeouts
from runtime.codec import new_key_spec
from runtime.settings import Settings


def test_environment_variables_configure_every_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("METALGATE_TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("METALGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("METALGATE_MODE", "saas")
    settings = Settings()
    assert settings.temporal_address == "temporal:7233"
    assert settings.mode == "saas"
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'metalgate.db'}"


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(
            environment="production",
            store_secret_key="changeme",
            codec_keys=[new_key_spec()],
        )


def test_production_requires_codec_and_store_keys() -> None:
    with pytest.raises(ValidationError, match="METALGATE_CODEC_KEYS"):
        Settings(environment="production", store_secret_key="x" * 40)
    ok = Settings(
        environment="production",
        store_secret_key="x" * 40,
        codec_keys=[new_key_spec()],
    )
    assert ok.environment == "production"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValidationError, match="mode"):
        Settings(mode="cloud")


def test_node_bootstrap_settings_for_an_air_gapped_site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METALGATE_KUBERNETES_PACKAGE_REPOSITORY", "http://mirror.corp/k8s/{minor}/")
    monkeypatch.setenv("METALGATE_AGENT_PACKAGE_INDEX", "http://mirror.corp/pypi/simple")
    settings = Settings(_env_file=None)
    assert settings.kubernetes_package_repository == "http://mirror.corp/k8s/{minor}/"
    assert settings.agent_package_index == "http://mirror.corp/pypi/simple"
    with pytest.raises(ValidationError, match="kubernetes_package_key_url"):
        Settings(_env_file=None, kubernetes_package_key_url="mirror.corp/key")
    with pytest.raises(ValidationError, match="METALGATE_BOOTSTRAP_TOKEN_TTL"):
        Settings(_env_file=None, bootstrap_token_ttl=3600, deploy_timeout=3600)


# Each saga timeout and the setting an operator changes it with.
LIFECYCLE_SETTINGS = {
    "gateway_probe": "METALGATE_GATEWAY_PROBE_TIMEOUT",
    "gateway_give_up": "METALGATE_GATEWAY_GIVE_UP_TIMEOUT",
    "maas_call": "METALGATE_MAAS_CALL_TIMEOUT",
    "deploy": "METALGATE_DEPLOY_TIMEOUT",
    "deploy_poll_interval": "METALGATE_DEPLOY_POLL_INTERVAL",
    "agent_ready": "METALGATE_AGENT_READY_TIMEOUT",
    "max_deploy_replacements": "METALGATE_MAX_DEPLOY_REPLACEMENTS",
    "command": "METALGATE_COMMAND_TIMEOUT",
    "release_none": "METALGATE_RELEASE_TIMEOUT_NONE",
    "release_quick": "METALGATE_RELEASE_TIMEOUT_QUICK",
    "release_secure": "METALGATE_RELEASE_TIMEOUT_SECURE",
    "release_poll_interval": "METALGATE_RELEASE_POLL_INTERVAL",
    "stop_workflows": "METALGATE_STOP_WORKFLOWS_TIMEOUT",
}


def test_every_lifecycle_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(LIFECYCLE_SETTINGS) == set(LifecycleTimeouts.model_fields)
    assert Settings().lifecycle_timeouts() == LifecycleTimeouts(), "one set of defaults"
    for field, env in LIFECYCLE_SETTINGS.items():
        monkeypatch.setenv(env, str(getattr(DEFAULT_TIMEOUTS, field) + 1))
    timeouts = Settings().lifecycle_timeouts()
    for field in LIFECYCLE_SETTINGS:
        assert getattr(timeouts, field) == getattr(DEFAULT_TIMEOUTS, field) + 1, field
