"""The CLI reads its API URL and key as `Settings` would, without importing `Settings`.

`cli.login` skips pydantic-settings (and with it temporalio) to keep `cluster list` fast; these
cases pin it to what `Settings` itself decides for the same environment and `.env` file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import SecretStr

from cli.exit_codes import ExitCode
from cli.login import (
    DEFAULT_API_URL,
    Credentials,
    credentials_path,
    load_credentials,
    save_credentials,
)
from runtime.settings import Settings


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No METALGATE_ variable, no credentials file, an empty working directory."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("METALGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("METALGATE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _settings_view() -> tuple[str, str | None]:
    settings = Settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return settings.api_url, key


def _cli_view() -> tuple[str, str | None]:
    creds = load_credentials()
    return creds.api_url, creds.api_key.get_secret_value() if creds.api_key else None


def test_the_default_url_is_the_settings_default(clean: Path) -> None:
    assert DEFAULT_API_URL == Settings.model_fields["api_url"].default
    assert _cli_view() == _settings_view() == (DEFAULT_API_URL, None)


def test_environment_dotenv_and_their_precedence_match_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean / ".env").write_text(
        "# a comment\nMETALGATE_API_URL=http://from-dotenv:1\nmetalgate_api_key='mgk_dotenv'\n"
    )
    assert _cli_view() == _settings_view() == ("http://from-dotenv:1", "mgk_dotenv")

    monkeypatch.setenv("metalgate_api_url", "http://from-env:2")  # names are case-insensitive
    assert _cli_view() == _settings_view() == ("http://from-env:2", "mgk_dotenv")


def test_explicit_values_beat_the_credentials_file_and_defaults_do_not(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_credentials(Credentials(api_url="http://saved:3", api_key=SecretStr("mgk_saved")))
    assert _cli_view() == ("http://saved:3", "mgk_saved")
    (clean / ".env").write_text("METALGATE_API_KEY=mgk_dotenv\n")
    assert _cli_view() == ("http://saved:3", "mgk_dotenv")
    monkeypatch.setenv("METALGATE_API_URL", "http://from-env:2")
    assert _cli_view() == ("http://from-env:2", "mgk_dotenv")


def test_an_unreadable_credentials_file_says_to_log_in_again(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials_path().parent.mkdir(parents=True)
    credentials_path().write_text("{not json")
    with pytest.raises(typer.Exit) as exited:
        load_credentials()
    assert exited.value.exit_code == ExitCode.USAGE
    assert "metalgate login" in capsys.readouterr().err
