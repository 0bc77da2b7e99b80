"""OAuthManager behaviour that needs no server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from support.auth_helpers import UnreadableInput
from video_processor.auth import AuthConfig, OAuthManager, get_auth_manager
from video_processor.auth.console import Console
from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken


def test_clear_token_without_file_creates_nothing(planopticon_home: Path) -> None:
    manager = get_auth_manager("zoom")
    manager.clear_token()
    manager.clear_token(revoke=True)
    assert not planopticon_home.exists()


def test_clear_token_removes_file(planopticon_home: Path) -> None:
    manager = get_auth_manager("notion")
    TokenStore(manager.config.resolved_token_path).save(StoredToken(access_token="a"))
    manager.clear_token()
    assert not manager.config.resolved_token_path.exists()
    assert manager.get_token() is None


def test_saved_token_without_expiry_is_returned(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    TokenStore(path).save(StoredToken(access_token="never-expires", expires_at=None))
    result = OAuthManager(AuthConfig(service="n", token_path=path)).authenticate()
    assert result.success
    assert result.method == "saved_token"
    assert result.expires_at is None


def test_expired_token_without_refresh_token_falls_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "n.json"
    TokenStore(path).save(StoredToken(access_token="old", expires_at=1.0))
    monkeypatch.setenv("N_KEY", "key-value")
    config = AuthConfig(service="n", token_path=path, api_key_env="N_KEY")
    result = OAuthManager(config, interactive=False).authenticate()
    assert result.method == "api_key"
    assert path.exists()


def test_failure_lists_steps_and_variables() -> None:
    manager = get_auth_manager("github")
    result = manager.authenticate()
    assert not result.success
    assert result.error == (
        "github: no authentication method succeeded. saved token: none saved at "
        f"{manager.config.resolved_token_path}; interactive sign-in: not tried, "
        "GITHUB_CLIENT_ID is not set; API key: GITHUB_TOKEN is not set. Set "
        "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET to sign in with OAuth, or "
        "GITHUB_TOKEN to use an API key."
    )


def test_get_token_returns_none_on_failure() -> None:
    assert get_auth_manager("dropbox").get_token() is None


def test_invalid_interactive_variable_is_ignored_with_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLANOPTICON_INTERACTIVE", "maybe")
    monkeypatch.setenv("ZOOM_CLIENT_ID", "zoom-id")
    console = Console(stdin=UnreadableInput())
    with caplog.at_level(logging.WARNING):
        result = OAuthManager(
            get_auth_manager("zoom").config, console=console
        ).authenticate()
    assert not result.success
    assert "Ignoring PLANOPTICON_INTERACTIVE='maybe': use 1 or 0." in caplog.text
    assert "skipped because no person can answer" in result.error


def test_unknown_dialect_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    config = AuthConfig(
        service="x",
        oauth_authorize_url="https://a.invalid/authorize",
        oauth_token_url="https://a.invalid/token",
        client_id="id",
        client_secret="secret-value",
        account_id="acct",
        dialect="martian",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert "unknown dialect 'martian'; use one of dropbox, github," in result.error


def test_repr_shows_service_only() -> None:
    manager = get_auth_manager("zoom")
    assert repr(manager) == "OAuthManager(service='zoom')"
