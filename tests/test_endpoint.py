"""Token endpoint responses the product must survive, against a loopback server."""

from __future__ import annotations

import dataclasses
import time

import pytest

from video_processor.auth import KNOWN_CONFIGS, AuthConfig, OAuthManager, _clock


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    sleeps: list[float] = []
    monkeypatch.setattr(_clock, "sleep", sleeps.append)
    return sleeps


def _zoom_s2s(server) -> AuthConfig:
    return dataclasses.replace(
        KNOWN_CONFIGS["zoom"],
        oauth_authorize_url=server.authorize_url,
        oauth_token_url=server.token_url,
        client_id=server.client_id,
        client_secret=server.client_secret,
        account_id=server.account_id,
    )


def test_success_without_access_token_is_an_error(zoom_server) -> None:
    zoom_server.fail_next(
        200, body='{"token_type": "bearer"}', content_type="application/json"
    )
    result = OAuthManager(_zoom_s2s(zoom_server), interactive=False).authenticate()
    assert not result.success
    assert "invalid_response: the response contains no access_token" in result.error


def test_html_error_page_is_retried(zoom_server, recorded_sleeps) -> None:
    zoom_server.fail_next(
        502, body="<html>Bad gateway</html>", content_type="text/html"
    )
    result = OAuthManager(_zoom_s2s(zoom_server), interactive=False).authenticate()
    assert result.success, result.error
    assert len(zoom_server.token_requests) == 2
    assert len(recorded_sleeps) == 1


def test_retry_gives_up_after_four_attempts(zoom_server, recorded_sleeps) -> None:
    zoom_server.fail_next(503, times=5)
    result = OAuthManager(_zoom_s2s(zoom_server), interactive=False).authenticate()
    assert not result.success
    assert "http_503" in result.error
    assert len(zoom_server.token_requests) == 4
    assert len(recorded_sleeps) == 3
    assert all(0 < delay <= 8 for delay in recorded_sleeps)


def test_retry_after_longer_than_budget_is_not_awaited(
    zoom_server, recorded_sleeps
) -> None:
    zoom_server.fail_next(429, retry_after=3600)
    started = time.monotonic()
    result = OAuthManager(_zoom_s2s(zoom_server), interactive=False).authenticate()
    assert not result.success
    assert "client credentials: token request rejected by the service (" in result.error
    assert len(zoom_server.token_requests) == 1
    assert recorded_sleeps == []
    assert time.monotonic() - started < 10


def test_request_timeout_is_retried(zoom_server, recorded_sleeps) -> None:
    zoom_server.delay_next(3)
    manager = OAuthManager(_zoom_s2s(zoom_server), interactive=False, http_timeout=1)
    result = manager.authenticate()
    assert result.success, result.error
    assert len(recorded_sleeps) == 1


def test_saved_token_with_wrong_types_is_set_aside(tmp_path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"access_token": "a", "expires_at": "tomorrow"}')
    config = AuthConfig(service="t", token_path=path, api_key_env="T_KEY")
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert not path.exists()
    assert len(list(tmp_path.glob("t.json.corrupt-*"))) == 1
