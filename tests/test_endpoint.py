"""Token endpoint responses the product must survive, against a loopback server."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time

import pytest

from video_processor.auth import KNOWN_CONFIGS, AuthConfig, OAuthManager, _clock
from video_processor.auth.errors import ConfigurationError, RevocationError
from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken


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
    assert "client credentials: token request failed (" in result.error
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


def _zoom_user(server) -> AuthConfig:
    return dataclasses.replace(
        KNOWN_CONFIGS["zoom"],
        oauth_authorize_url=server.authorize_url,
        oauth_token_url=server.token_url,
        revocation_url=server.revoke_url,
        client_id=server.client_id,
        client_secret=server.client_secret,
    )


def _save_expired(config: AuthConfig, refresh: str = "refresh-old-value") -> None:
    TokenStore(config.resolved_token_path).save(
        StoredToken(
            access_token="access-old-value",
            refresh_token=refresh,
            expires_at=1.0,
            client_id=config.client_id,
        )
    )


def test_rotated_refresh_token_kept_despite_bad_expiry(zoom_server) -> None:
    config = _zoom_user(zoom_server)
    _save_expired(config)
    zoom_server.fail_next(
        200,
        body='{"access_token": "access-new", "refresh_token": "refresh-rotated", '
        '"expires_in": "3600s"}',
        content_type="application/json",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert result.success, result.error
    saved = json.loads(config.resolved_token_path.read_text())
    assert saved["refresh_token"] == "refresh-rotated"
    assert saved["expires_at"] is None


def test_non_string_token_type_does_not_corrupt_file(zoom_server) -> None:
    config = _zoom_user(zoom_server)
    _save_expired(config)
    zoom_server.fail_next(
        200,
        body='{"access_token": "access-new", "token_type": 1, "expires_in": 3600}',
        content_type="application/json",
    )
    assert OAuthManager(config, interactive=False).authenticate().success
    reloaded = TokenStore(config.resolved_token_path).load(use_cache=False)
    assert reloaded is not None
    assert reloaded.access_token == "access-new"
    assert list(config.resolved_token_path.parent.glob("*.corrupt-*")) == []


def test_oversized_response_is_rejected(zoom_server) -> None:
    zoom_server.fail_next(400, body="x" * (2 * 1024 * 1024))
    result = OAuthManager(_zoom_s2s(zoom_server), interactive=False).authenticate()
    assert not result.success
    assert "the response is larger than 1048576 bytes" in result.error


def test_dripping_response_gives_up_at_timeout(recorded_sleeps) -> None:
    with _DrippingServer() as url:
        config = AuthConfig(
            service="drip",
            oauth_authorize_url=url,
            oauth_token_url=url,
            client_id="id",
            client_secret="drip-secret-value",
            account_id="acct",
        )
        started = time.monotonic()
        manager = OAuthManager(config, interactive=False, http_timeout=1)
        result = manager.authenticate()
        elapsed = time.monotonic() - started
    assert not result.success
    assert "the response did not arrive in time" in result.error
    assert elapsed < 8


def test_server_error_code_is_cleaned(zoom_server) -> None:
    config = _zoom_user(zoom_server)
    _save_expired(config, refresh="refresh+old/value")
    zoom_server.fail_next(
        400,
        body=json.dumps(
            {
                "error": "invalid_grant\x1b[2J\x1b[31mINJECTED",
                "error_description": "bad refresh_token=refresh%2Bold%2Fvalue",
            }
        ),
        content_type="application/json",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert "\x1b" not in result.error
    assert "refresh%2Bold%2Fvalue" not in result.error
    assert "bad refresh_token=***" in result.error


def test_redirect_uri_in_error_stays_visible(zoom_server) -> None:
    zoom_server.fail_next(
        400,
        body=json.dumps(
            {
                "error": "redirect_uri_mismatch",
                "error_description": "redirect_uri account-visible is not registered",
            }
        ),
        content_type="application/json",
    )
    config = dataclasses.replace(_zoom_s2s(zoom_server), account_id="account-visible")
    result = OAuthManager(config, interactive=False).authenticate()
    assert "redirect_uri account-visible is not registered" in result.error


def test_revocation_redirect_is_a_failure(zoom_server) -> None:
    config = _zoom_user(zoom_server)
    _save_expired(config)
    zoom_server.fail_next(302, endpoint="revoke")
    with pytest.raises(RevocationError, match="http_302"):
        OAuthManager(config).clear_token(revoke=True)
    assert not config.resolved_token_path.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[bad/token", "is not a valid URL"),
        ("https://user:pass@auth.invalid/token", "must not contain a user name"),
        ("https://auth.invalid/to ken", "contains spaces or control characters"),
        ("http://127.0.0.1:99999/token", "is not a valid URL"),
    ],
)
def test_malformed_endpoint_is_a_configuration_error(url: str, message: str) -> None:
    config = AuthConfig(
        service="bad",
        oauth_authorize_url="https://auth.invalid/authorize",
        oauth_token_url=url,
        client_id="id",
        client_secret="bad-secret-value",
        account_id="acct",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert message in result.error
    assert "pass" not in result.error.replace("password", "")


def test_reserved_authorize_params_are_rejected() -> None:
    with pytest.raises(
        ConfigurationError, match="authorize_params must not set 'scope'"
    ):
        AuthConfig(service="x", authorize_params={"scope": "all"})


class _DrippingServer:
    """Loopback server that sends its response one byte every 0.25 s."""

    def __enter__(self) -> str:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/token"

    def _serve(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000\r\n\r\n"
            )
            for _ in range(200):
                if self._stop.wait(0.25):
                    return
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close()
