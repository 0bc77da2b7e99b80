"""OAuthManager behaviour that needs no server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from support.auth_helpers import UnreadableInput
from video_processor.auth import AuthConfig, OAuthManager, get_auth_manager
from video_processor.auth.console import Console
from video_processor.auth.errors import ConfigurationError
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


def test_unknown_dialect_is_rejected() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown dialect 'martian'; use one of"
    ):
        AuthConfig(service="x", dialect="martian")


def test_dialect_names_match_dialects() -> None:
    from video_processor.auth.config import DIALECT_NAMES
    from video_processor.auth.dialects import DIALECTS

    assert sorted(DIALECTS) == sorted(DIALECT_NAMES)


def test_repr_shows_service_only() -> None:
    manager = get_auth_manager("zoom")
    assert repr(manager) == "OAuthManager(service='zoom')"


def test_unlockable_token_file_falls_through_to_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.json"
    TokenStore(path).save(
        StoredToken(access_token="old", refresh_token="r", expires_at=1.0)
    )
    (tmp_path / "g.json.lock").mkdir()
    monkeypatch.setenv("G_KEY", "key-value")
    config = AuthConfig(
        service="g",
        oauth_authorize_url="https://a.invalid/authorize",
        oauth_token_url="https://a.invalid/token",
        client_id="id",
        token_path=path,
        api_key_env="G_KEY",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert result.success
    assert result.method == "api_key"


def test_unlockable_token_file_reports_path(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    TokenStore(path).save(
        StoredToken(access_token="old", refresh_token="r", expires_at=1.0)
    )
    (tmp_path / "g.json.lock").mkdir()
    config = AuthConfig(service="g", token_path=path, client_id="id")
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert f"Cannot create or lock {tmp_path / 'g.json.lock'}" in result.error


def test_unreadable_token_path_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.mkdir()
    result = OAuthManager(AuthConfig(service="d", token_path=path)).authenticate()
    assert not result.success
    assert f"none saved at {path}" in result.error
    assert not path.exists()
    assert len(list(tmp_path.glob("d.json.corrupt-*"))) == 1


def test_failure_hints_name_only_unset_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", "gh-id")
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "gh-secret-value")
    result = OAuthManager(
        get_auth_manager("github").config, interactive=False
    ).authenticate()
    assert result.error.endswith("Set GITHUB_TOKEN to use an API key.")
    assert "GITHUB_CLIENT_ID and" not in result.error


def test_missing_endpoints_are_named() -> None:
    result = OAuthManager(AuthConfig(service="bare", client_id="x")).authenticate()
    assert (
        "OAuth: not configured, set both oauth_authorize_url and oauth_token_url"
        in (result.error)
    )


def test_headless_no_browser_keeps_code_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BROWSER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 1 127.0.0.1 22")
    from video_processor.auth.flows.interactive import use_device_flow

    config = get_auth_manager("github").config
    assert config.device_authorization_url
    assert use_device_flow(config, device=None, open_browser=True) is True
    assert use_device_flow(config, device=None, open_browser=False) is False
    assert use_device_flow(config, device=True, open_browser=False) is True
    assert use_device_flow(config, device=False, open_browser=True) is False


def test_get_token_sees_another_writer_at_once(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    TokenStore(path).save(StoredToken(access_token="first", expires_at=None))
    manager = OAuthManager(AuthConfig(service="h", token_path=path), interactive=False)
    assert manager.get_token() == "first"
    assert manager.get_token() == "first"
    TokenStore(path).save(StoredToken(access_token="second", expires_at=None))
    assert manager.get_token() == "second"
    path.unlink()
    assert manager.get_token() is None


def test_get_token_hot_path_respects_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from video_processor.auth import _clock

    path = tmp_path / "e.json"
    TokenStore(path).save(StoredToken(access_token="short", expires_at=1000.0))
    manager = OAuthManager(AuthConfig(service="e", token_path=path), interactive=False)
    monkeypatch.setattr(_clock, "now", lambda: 999.0)
    assert manager.get_token() == "short"
    monkeypatch.setattr(_clock, "now", lambda: 1000.0)
    assert manager.get_token() is None
