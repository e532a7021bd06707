from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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
