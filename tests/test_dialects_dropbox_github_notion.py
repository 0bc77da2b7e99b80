"""Dropbox, GitHub and Notion dialects, driven through the product.

Each test starts from the service's ``KNOWN_CONFIGS`` entry or a
``config.toml`` table. It changes only endpoint URLs, client credentials and
the redirect URI, so the dialect still follows the service name, as it does
for a GitHub Enterprise host or a proxy. The requests go to the loopback
fakes in ``support.providers``, whose module docstrings name the
documentation they follow, such as Dropbox's HTTP API documentation,
GitHub's "Authorizing OAuth apps" and Notion's create-a-token reference.
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import logging
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest
from click.testing import CliRunner

from support.auth_helpers import (
    TypedInput,
    UnreadableInput,
    expire_saved_token,
    query_of,
    write_service_table,
)
from support.providers import DropboxServer, GitHubServer, NotionServer
from support.providers.base import RecordedRequest, pkce_s256_challenge
from support.resource_server import ResourceServer
from support.secrets_check import assert_no_secret
from video_processor.auth import (
    KNOWN_CONFIGS,
    AuthConfig,
    OAuthManager,
    _clock,
    get_auth_config,
)
from video_processor.auth.console import Console
from video_processor.auth.errors import AuthError
from video_processor.auth.httpx_auth import OAuthManagerAuth
from video_processor.cli.main import cli

# Start of the product's fixed clock, which makes expiry arithmetic exact.
PRODUCT_START = 1_800_000_000.0
EXPIRY_MARGIN = 60.0
DROPBOX_LIFETIME = 14400.0  # 4 hours
GITHUB_LIFETIME = 28800.0  # 8 hours

AUTH_CODE = re.compile(r'<code id="auth-code">([^<]+)</code>')
USER_CODE = re.compile(r"enter the code:\s+(\S+)")
PASTE_PROMPT = "Paste the authorization code or the redirected URL: "


# -- helpers ---------------------------------------------------------------


class ProductClock:
    """The product's ``_clock.now``, moved by hand."""

    def __init__(self, start: float) -> None:
        self.now = start


@pytest.fixture
def product_clock(monkeypatch: pytest.MonkeyPatch) -> ProductClock:
    clock = ProductClock(PRODUCT_START)
    monkeypatch.setattr(_clock, "now", lambda: clock.now)
    return clock


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the product's back-off waits instead of waiting."""
    recorded: list[float] = []
    monkeypatch.setattr(_clock, "sleep", recorded.append)
    return recorded


def _manager(
    config: AuthConfig,
    *,
    stdin: Optional[io.TextIOBase] = None,
    open_browser: bool = True,
    **kwargs: Any,
) -> OAuthManager:
    console = Console(stdin=stdin or UnreadableInput(), stderr=io.StringIO())
    if not open_browser:
        console.open_browser = None
    kwargs.setdefault("interactive", True)
    # A sign-in that the fake rejects on its authorize page fails after this
    # many seconds instead of the default five minutes.
    kwargs.setdefault("login_timeout", 10)
    return OAuthManager(config, console=console, **kwargs)


def _console_text(manager: OAuthManager) -> str:
    return manager._console.stderr.getvalue()  # type: ignore[union-attr]


def _batch(config: AuthConfig) -> OAuthManager:
    """Return a manager that never signs in interactively."""
    return OAuthManager(config, interactive=False)


def _saved(config: AuthConfig) -> dict[str, Any]:
    return json.loads(config.resolved_token_path.read_text())


def _free_loopback_uri(path: str = "/callback") -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the product")


def _newest_access_token(server: Any) -> str:
    records = [r for r in server.tokens.values() if r.kind == "access"]
    return records[-1].value


# -- Dropbox ---------------------------------------------------------------


def _dropbox_config(server: DropboxServer, **fields: Any) -> AuthConfig:
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url,
        "oauth_token_url": server.token_url,
        "revocation_url": server.revoke_url,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    values.update(fields)
    return dataclasses.replace(KNOWN_CONFIGS["dropbox"], **values)


def _pasted_dropbox_code(browser_env: Any) -> TypedInput:
    """Type the code that Dropbox's page showed, once the browser is done."""

    def code() -> Optional[str]:
        match = AUTH_CODE.search(browser_env.page_body or "")
        return html.unescape(match.group(1)) if match else None

    return TypedInput(code)


def _dropbox_sign_in(
    server: DropboxServer, browser_env: Any, config: Optional[AuthConfig] = None
) -> tuple[OAuthManager, Any]:
    config = config or _dropbox_config(server)
    manager = _manager(config, stdin=_pasted_dropbox_code(browser_env))
    result = manager.authenticate()
    assert result.success, result.error
    return manager, result


def test_dropbox_default_pastes_shown_code(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    manager, result = _dropbox_sign_in(dropbox_server, browser_env)

    params = query_of(browser_env.last_run["url"])
    assert "redirect_uri" not in params
    assert params["token_access_type"] == "offline"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert browser_env.page_status == 200
    assert PASTE_PROMPT in _console_text(manager)

    (exchange,) = dropbox_server.token_requests
    assert exchange.form_params["grant_type"] == "authorization_code"
    assert exchange.form_params["code"] == dropbox_server.last_code.value
    assert "redirect_uri" not in exchange.form_params
    assert result.method == "oauth_pkce"
    assert result.refresh_token
    assert dropbox_server.is_refresh_token_live(result.refresh_token)
    assert _saved(manager.config)["refresh_token"] == result.refresh_token


def test_dropbox_expiry_four_hours_minus_margin(
    dropbox_server: DropboxServer, browser_env: Any, product_clock: ProductClock
) -> None:
    manager, result = _dropbox_sign_in(dropbox_server, browser_env)

    saved = _saved(manager.config)
    assert saved["obtained_at"] == PRODUCT_START
    assert saved["expires_at"] == PRODUCT_START + DROPBOX_LIFETIME - EXPIRY_MARGIN
    assert result.expires_at == saved["expires_at"]

    dropbox_server.clear_requests()
    product_clock.now = saved["expires_at"] - 1
    assert _batch(manager.config).authenticate().access_token == result.access_token
    assert dropbox_server.token_requests == []

    product_clock.now = saved["expires_at"]
    refreshed = _batch(manager.config).authenticate()
    assert refreshed.success, refreshed.error
    assert refreshed.access_token != result.access_token
    assert len(dropbox_server.token_requests) == 1


def test_dropbox_refresh_keeps_refresh_token(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    expire_saved_token(manager.config.resolved_token_path)
    dropbox_server.clear_requests()

    second = _batch(manager.config).authenticate()

    assert second.success, second.error
    assert second.method == "saved_token"
    assert second.access_token != first.access_token
    assert second.refresh_token == first.refresh_token
    (refresh,) = dropbox_server.token_requests
    assert refresh.form_params["grant_type"] == "refresh_token"
    assert refresh.form_params["refresh_token"] == first.refresh_token
    saved = _saved(manager.config)
    assert saved["refresh_token"] == first.refresh_token
    assert saved["access_token"] == second.access_token
    assert dropbox_server.is_refresh_token_live(first.refresh_token)


def test_dropbox_public_app_refreshes_with_pkce(
    dropbox_server: DropboxServer,
    browser_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DROPBOX_APP_KEY", dropbox_server.client_id)
    config = _dropbox_config(dropbox_server, client_id=None, client_secret=None)
    _dropbox_sign_in(dropbox_server, browser_env, config)
    expire_saved_token(config.resolved_token_path)

    second = _batch(config).authenticate()

    assert second.success, second.error
    exchange, refresh = dropbox_server.token_requests
    for request in (exchange, refresh):
        assert request.form_params["client_id"] == dropbox_server.client_id
        assert "client_secret" not in request.form_params
        assert request.header("authorization") is None
    verifier = exchange.form_params["code_verifier"]
    challenge = query_of(browser_env.last_run["url"])["code_challenge"]
    assert pkce_s256_challenge(verifier) == challenge
    assert _saved(config)["client_secret"] is None


@pytest.mark.parametrize(
    ("auth_method", "uses_basic"),
    [(None, True), ("client_secret_basic", True), ("client_secret_post", False)],
)
def test_dropbox_client_auth_basic_or_form(
    dropbox_server: DropboxServer,
    browser_env: Any,
    auth_method: Optional[str],
    uses_basic: bool,
) -> None:
    config = _dropbox_config(dropbox_server, token_endpoint_auth_method=auth_method)
    _dropbox_sign_in(dropbox_server, browser_env, config)
    expire_saved_token(config.resolved_token_path)
    assert _batch(config).authenticate().success

    credentials = (dropbox_server.client_id, dropbox_server.client_secret)
    exchange, refresh = dropbox_server.token_requests
    for request in (exchange, refresh):
        if uses_basic:
            assert request.basic_auth == credentials
            assert "client_secret" not in request.form_params
        else:
            assert request.basic_auth is None
            assert request.form_params["client_id"] == credentials[0]
            assert request.form_params["client_secret"] == credentials[1]


def test_dropbox_registered_redirect_exact_match(
    dropbox_server: DropboxServer,
    browser_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redirect_uri = _free_loopback_uri("/dropbox-callback")
    dropbox_server.add_redirect_uri(redirect_uri)
    monkeypatch.setenv("DROPBOX_REDIRECT_URI", redirect_uri)

    result = _manager(_dropbox_config(dropbox_server)).authenticate()

    assert result.success, result.error
    assert query_of(browser_env.last_run["url"])["redirect_uri"] == redirect_uri
    assert browser_env.listener_status == 200
    (exchange,) = dropbox_server.token_requests
    assert exchange.form_params["redirect_uri"] == redirect_uri


def test_dropbox_unregistered_redirect_fails(
    dropbox_server: DropboxServer,
    browser_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered = _free_loopback_uri("/dropbox-callback")
    dropbox_server.add_redirect_uri(registered)
    monkeypatch.setenv("DROPBOX_REDIRECT_URI", registered + "/")

    result = _manager(_dropbox_config(dropbox_server), login_timeout=1).authenticate()

    assert not result.success
    assert "No authorization arrived within 1 s" in result.error
    assert browser_env.page_status == 400
    assert "must exactly match" in browser_env.page_body
    assert dropbox_server.token_requests == []


def test_dropbox_revoke_bearer_kills_grant(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    manager, result = _dropbox_sign_in(dropbox_server, browser_env)

    manager.clear_token(revoke=True)

    (revoke,) = dropbox_server.requests_to("revoke")
    assert revoke.method == "POST"
    assert revoke.bearer_token == result.access_token
    assert revoke.body == b""
    assert dropbox_server.revoked_tokens == [result.access_token]
    assert not dropbox_server.is_access_token_live(result.access_token)
    assert not dropbox_server.is_refresh_token_live(result.refresh_token)
    assert not manager.config.resolved_token_path.exists()


def test_dropbox_revoke_expired_refreshes_first(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    dropbox_server.expire_access_tokens()
    expire_saved_token(manager.config.resolved_token_path)
    dropbox_server.clear_requests()

    _batch(manager.config).clear_token(revoke=True)

    assert [r.endpoint for r in dropbox_server.requests] == ["token", "revoke"]
    assert dropbox_server.token_requests[0].form_params["grant_type"] == (
        "refresh_token"
    )
    fresh = _newest_access_token(dropbox_server)
    assert fresh != first.access_token
    assert dropbox_server.requests_to("revoke")[0].bearer_token == fresh
    assert dropbox_server.revoked_tokens == [fresh]
    assert not dropbox_server.is_refresh_token_live(first.refresh_token)
    assert not manager.config.resolved_token_path.exists()


def test_dropbox_revoke_error_names_tag(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    # The fake rejects a dead token with Dropbox's API error shape, HTTP 401
    # {"error_summary": "invalid_access_token/", "error": {".tag": ...}}.
    manager, result = _dropbox_sign_in(dropbox_server, browser_env)
    dropbox_server.revoke_all()

    with pytest.raises(AuthError) as raised:
        manager.clear_token(revoke=True)

    assert "invalid_access_token" in str(raised.value)
    assert not manager.config.resolved_token_path.exists()
    assert_no_secret(str(raised.value), [result.access_token, result.refresh_token])


def test_dropbox_refresh_503_retried(
    dropbox_server: DropboxServer, browser_env: Any, sleeps: list[float]
) -> None:
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    expire_saved_token(manager.config.resolved_token_path)
    dropbox_server.clear_requests()
    dropbox_server.fail_next(503)

    second = _batch(manager.config).authenticate()

    assert second.success, second.error
    assert second.access_token != first.access_token
    assert len(dropbox_server.token_requests) == 2
    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5


def test_dropbox_invalid_grant_not_retried(
    dropbox_server: DropboxServer, browser_env: Any, sleeps: list[float]
) -> None:
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    dropbox_server.revoke_all()
    expire_saved_token(manager.config.resolved_token_path)
    dropbox_server.clear_requests()

    result = _batch(manager.config).authenticate()

    assert not result.success
    assert (
        "saved token: token refresh rejected by the service (invalid_grant: "
        "refresh token is invalid or revoked); sign in again with "
        "`planopticon auth dropbox`" in result.error
    )
    assert len(dropbox_server.token_requests) == 1
    assert sleeps == []
    assert _saved(manager.config)["refresh_token"] == first.refresh_token


def test_dropbox_error_text_scrubs_token(
    dropbox_server: DropboxServer, browser_env: Any
) -> None:
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    expire_saved_token(manager.config.resolved_token_path)
    dropbox_server.fail_next(
        error="invalid_grant",
        description=f"refresh token {first.refresh_token} was revoked",
    )

    result = _batch(manager.config).authenticate()

    assert not result.success
    assert "(invalid_grant: refresh token *** was revoked)" in result.error
    assert_no_secret(
        result.error,
        [first.refresh_token, first.access_token, dropbox_server.client_secret],
    )


def test_dropbox_debug_log_has_no_secret(
    dropbox_server: DropboxServer,
    browser_env: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="video_processor")
    manager, first = _dropbox_sign_in(dropbox_server, browser_env)
    expire_saved_token(manager.config.resolved_token_path)
    second = _batch(manager.config).authenticate()
    manager.clear_token(revoke=True)

    exchange = dropbox_server.token_requests[0]
    secrets = [
        dropbox_server.client_secret,
        exchange.form_params["code"],
        exchange.form_params["code_verifier"],
        first.access_token,
        first.refresh_token,
        second.access_token,
    ]
    assert caplog.records
    assert_no_secret(caplog.text, secrets)
    assert_no_secret(_console_text(manager), secrets)


# -- GitHub ----------------------------------------------------------------


def _github_config(server: GitHubServer, **fields: Any) -> AuthConfig:
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url,
        "oauth_token_url": server.token_url,
        "device_authorization_url": server.device_authorization_url,
        "revocation_url": server.url("/applications/{client_id}/token"),
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    values.update(fields)
    return dataclasses.replace(KNOWN_CONFIGS["github"], **values)


def _github_sign_in(
    server: GitHubServer, config: Optional[AuthConfig] = None
) -> tuple[OAuthManager, Any]:
    manager = _manager(config or _github_config(server))
    result = manager.authenticate()
    assert result.success, result.error
    return manager, result


def test_github_asks_json_and_parses_it(
    github_server: GitHubServer, browser_env: Any
) -> None:
    manager, result = _github_sign_in(github_server)

    (exchange,) = github_server.token_requests
    assert exchange.header("accept") == "application/json"
    assert exchange.content_type == "application/x-www-form-urlencoded"
    assert github_server.is_access_token_live(result.access_token)
    assert _saved(manager.config)["access_token"] == result.access_token
    assert _saved(manager.config)["token_type"] == "bearer"


def test_github_form_encoded_answer_parsed(
    github_server: GitHubServer, browser_env: Any
) -> None:
    # A server (or proxy) that ignores Accept sends GitHub's default format.
    github_server.fail_next(
        200,
        body="access_token=gho_formbody&scope=repo%2Cread%3Aorg&token_type=bearer",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )

    manager, result = _github_sign_in(github_server)

    assert result.access_token == "gho_formbody"
    saved = _saved(manager.config)
    assert saved["scope"] == "repo read:org"
    assert saved["token_type"] == "bearer"
    assert saved["expires_at"] is None


@pytest.mark.parametrize("body_format", ["json", "form"])
def test_github_bad_verification_code_fails(
    github_server: GitHubServer,
    browser_env: Any,
    sleeps: list[float],
    body_format: str,
) -> None:
    description = "The code passed is incorrect or expired."
    if body_format == "json":
        github_server.fail_next(error="bad_verification_code", description=description)
    else:
        github_server.fail_next(
            200,
            body="error=bad_verification_code&error_description="
            + description.replace(" ", "+"),
            content_type="application/x-www-form-urlencoded; charset=utf-8",
        )
    config = _github_config(github_server)

    result = _manager(config).authenticate()

    assert not result.success
    assert result.access_token is None
    assert "interactive sign-in: " in result.error
    assert (
        f"rejected by the service (bad_verification_code: {description})"
        in result.error
    )
    assert len(github_server.token_requests) == 1
    assert sleeps == []
    assert not config.resolved_token_path.exists()


def test_github_wrong_secret_fails(
    github_server: GitHubServer, browser_env: Any, sleeps: list[float]
) -> None:
    wrong_secret = "wrong-" + github_server.client_secret
    config = _github_config(github_server, client_secret=wrong_secret)

    result = _manager(config).authenticate()

    assert not result.success
    assert (
        "rejected by the service (incorrect_client_credentials: "
        "The client_id and/or client_secret passed are incorrect.)" in result.error
    )
    assert len(github_server.token_requests) == 1
    assert sleeps == []
    assert_no_secret(result.error, [wrong_secret, github_server.client_secret])
    assert not config.resolved_token_path.exists()


def test_github_bad_refresh_token_fails(
    github_server: GitHubServer, browser_env: Any, sleeps: list[float]
) -> None:
    github_server.expiring_tokens = True
    manager, first = _github_sign_in(github_server)
    github_server.revoke_all()
    expire_saved_token(manager.config.resolved_token_path)
    github_server.clear_requests()

    result = _batch(manager.config).authenticate()

    assert not result.success
    assert (
        "saved token: token refresh rejected by the service (bad_refresh_token: "
        "The refresh token passed is incorrect or expired.); sign in again with "
        "`planopticon auth github`" in result.error
    )
    assert len(github_server.token_requests) == 1
    assert sleeps == []
    assert _saved(manager.config)["refresh_token"] == first.refresh_token


def test_github_classic_token_never_expires(
    github_server: GitHubServer, browser_env: Any, product_clock: ProductClock
) -> None:
    manager, result = _github_sign_in(github_server)

    assert result.expires_at is None
    assert result.refresh_token is None
    saved = _saved(manager.config)
    assert saved["expires_at"] is None
    assert saved["refresh_token"] is None

    github_server.clear_requests()
    product_clock.now += 10 * 365 * 86400
    later = _batch(manager.config).authenticate()
    assert later.success, later.error
    assert later.method == "saved_token"
    assert later.access_token == result.access_token
    assert github_server.requests == []


def test_github_status_shows_never_and_scopes(
    github_server: GitHubServer, browser_env: Any
) -> None:
    manager, _ = _github_sign_in(github_server)
    assert _saved(manager.config)["scope"] == "repo read:org"

    result = CliRunner().invoke(
        cli, ["auth", "status", "github"], catch_exceptions=False
    )

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "  token: valid, obtained via oauth_pkce" in lines
    assert "  expires: never (valid until the service rejects it)" in lines
    assert "  refreshable: no" in lines
    assert "  granted scopes: repo read:org" in lines
    assert "  requested scopes: repo read:org" in lines


def test_github_expiring_token_refresh_rotates(
    github_server: GitHubServer, browser_env: Any, product_clock: ProductClock
) -> None:
    github_server.expiring_tokens = True
    manager, first = _github_sign_in(github_server)
    saved = _saved(manager.config)
    assert saved["expires_at"] == PRODUCT_START + GITHUB_LIFETIME - EXPIRY_MARGIN
    assert first.refresh_token

    github_server.clear_requests()
    product_clock.now = saved["expires_at"]
    second = _batch(manager.config).authenticate()

    assert second.success, second.error
    assert second.method == "saved_token"
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    (refresh,) = github_server.token_requests
    assert refresh.form_params["grant_type"] == "refresh_token"
    assert refresh.form_params["refresh_token"] == first.refresh_token
    assert refresh.form_params["client_secret"] == github_server.client_secret
    assert not github_server.is_refresh_token_live(first.refresh_token)
    assert github_server.is_refresh_token_live(second.refresh_token)
    saved = _saved(manager.config)
    assert saved["refresh_token"] == second.refresh_token
    assert saved["access_token"] == second.access_token
    assert saved["expires_at"] == product_clock.now + GITHUB_LIFETIME - EXPIRY_MARGIN


def test_github_pkce_s256_with_secret(
    github_server: GitHubServer, browser_env: Any
) -> None:
    _github_sign_in(github_server)

    params = query_of(browser_env.last_run["url"])
    assert params["code_challenge_method"] == "S256"
    assert params["scope"] == "repo read:org"
    (exchange,) = github_server.token_requests
    form = exchange.form_params
    assert pkce_s256_challenge(form["code_verifier"]) == params["code_challenge"]
    assert form["client_id"] == github_server.client_id
    assert form["client_secret"] == github_server.client_secret
    assert form["code"] == github_server.last_code.value


def test_github_loopback_callback_any_port(
    github_server: GitHubServer, browser_env: Any
) -> None:
    _github_sign_in(github_server)

    redirect_uri = query_of(browser_env.last_run["url"])["redirect_uri"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", redirect_uri)
    assert redirect_uri != "http://127.0.0.1:80/callback"
    assert browser_env.listener_status == 200
    assert github_server.token_requests[0].form_params["redirect_uri"] == redirect_uri


def test_github_connection_drop_retried(
    github_server: GitHubServer, browser_env: Any, sleeps: list[float]
) -> None:
    github_server.fail_next(drop_connection=True)

    _, result = _github_sign_in(github_server)

    first_try, second_try = github_server.token_requests
    assert first_try.form_params["code"] == second_try.form_params["code"]
    assert len(sleeps) == 1
    assert github_server.is_access_token_live(result.access_token)


def test_github_revoke_delete_basic_json(
    github_server: GitHubServer, browser_env: Any
) -> None:
    manager, result = _github_sign_in(github_server)

    manager.clear_token(revoke=True)

    (revoke,) = github_server.requests_to("revoke")
    assert revoke.method == "DELETE"
    assert revoke.path == f"/applications/{github_server.client_id}/token"
    assert revoke.basic_auth == (github_server.client_id, github_server.client_secret)
    assert revoke.content_type == "application/json"
    assert revoke.json == {"access_token": result.access_token}
    assert github_server.revoked_tokens == [result.access_token]
    assert not github_server.is_access_token_live(result.access_token)
    assert not manager.config.resolved_token_path.exists()


def test_github_token_limit_rejection_reported(
    github_server: GitHubServer, browser_env: Any, tmp_path: Path
) -> None:
    # The fake revokes the oldest grant beyond max_tokens_per_scope live tokens
    # per user, app and scope (10, as on GitHub). A limit of 1 makes a second
    # sign-in elsewhere revoke the first token.
    github_server.max_tokens_per_scope = 1
    manager, first = _github_sign_in(github_server)
    elsewhere = _github_config(github_server, token_path=tmp_path / "other.json")
    _github_sign_in(github_server, elsewhere)
    assert not github_server.is_access_token_live(first.access_token)
    github_server.clear_requests()

    auth = OAuthManagerAuth(_batch(manager.config))
    with (
        ResourceServer(github_server.is_access_token_live) as api,
        httpx.Client(auth=auth, trust_env=False) as client,
        pytest.raises(AuthError) as raised,
    ):
        client.get(api.url)

    assert api.seen_tokens == [first.access_token]
    assert "saved token: the token was rejected and has no refresh token" in str(
        raised.value
    )
    assert "`planopticon auth github`" in str(raised.value)
    assert github_server.requests == []


def test_github_enterprise_config_toml(
    github_server: GitHubServer,
    browser_env: Any,
    planopticon_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_service_table(
        planopticon_home,
        "github",
        {
            "oauth_authorize_url": github_server.authorize_url,
            "oauth_token_url": github_server.token_url,
            "device_authorization_url": github_server.device_authorization_url,
            "revocation_url": github_server.url("/applications/{client_id}/token"),
        },
    )
    monkeypatch.setenv("GITHUB_CLIENT_ID", github_server.client_id)
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", github_server.client_secret)
    runner = CliRunner()

    signed_in = runner.invoke(cli, ["auth", "github"], catch_exceptions=False)

    assert signed_in.exit_code == 0, signed_in.output
    assert "GitHub authentication successful (oauth_pkce)." in signed_in.stdout
    (exchange,) = github_server.token_requests
    assert exchange.header("accept") == "application/json"
    assert exchange.form_params["client_secret"] == github_server.client_secret
    config = get_auth_config("github")
    assert config is not None
    access_token = _saved(config)["access_token"]
    assert github_server.is_access_token_live(access_token)

    signed_out = runner.invoke(
        cli, ["auth", "github", "--logout", "--revoke"], catch_exceptions=False
    )

    assert signed_out.exit_code == 0, signed_out.output
    assert (
        "Revoked the GitHub token at the service and removed the saved token."
        in signed_out.stdout
    )
    (revoke,) = github_server.requests_to("revoke")
    assert revoke.path == f"/applications/{github_server.client_id}/token"
    assert not github_server.is_access_token_live(access_token)
    assert_no_secret(
        signed_in.output + signed_out.output,
        [github_server.client_secret, access_token],
    )


# -- GitHub device flow ----------------------------------------------------


@pytest.fixture
def device_sleeps(
    monkeypatch: pytest.MonkeyPatch, github_server: GitHubServer
) -> list[float]:
    """Record polling waits and move the fake's clock by them instead."""
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        github_server.advance_time(seconds)
        time.sleep(0.01)

    monkeypatch.setattr(_clock, "sleep", sleep)
    return recorded


class DevicePerson(threading.Thread):
    """Read the user code from the product's output, then act on the fake."""

    def __init__(self, manager: OAuthManager, action: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self.manager = manager
        self.action = action
        self.user_code: Optional[str] = None

    def run(self) -> None:
        def shown_code() -> Optional[str]:
            match = USER_CODE.search(_console_text(self.manager))
            return match.group(1) if match else None

        self.user_code = _wait_for(shown_code)
        self.action(self.user_code)


def _device_manager(server: GitHubServer) -> OAuthManager:
    # The recorded waits do not pass real time, so a long login timeout keeps
    # the product from shortening a wait to the time that remains.
    return _manager(
        _github_config(server), device=True, open_browser=False, login_timeout=600
    )


def _run_device_flow(
    manager: OAuthManager, action: Callable[[str], None]
) -> tuple[Any, DevicePerson]:
    person = DevicePerson(manager, action)
    person.start()
    result = manager.authenticate()
    person.join(10)
    assert not person.is_alive()
    return result, person


def test_github_device_flow_sends_no_secret(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    manager = _device_manager(github_server)

    def approve_after_pending(user_code: str) -> None:
        _wait_for(lambda: github_server.last_device_authorization.poll_count >= 2)
        github_server.approve_device(user_code)

    result, person = _run_device_flow(manager, approve_after_pending)

    assert result.success, result.error
    assert result.method == "device_code"
    console_text = _console_text(manager)
    assert github_server.verification_uri in console_text
    assert f"enter the code:  {person.user_code}" in console_text
    (device,) = github_server.requests_to("device")
    polls = github_server.token_requests
    assert len(polls) >= 3
    for request in (device, *polls):
        assert request.form_params["client_id"] == github_server.client_id
        assert "client_secret" not in request.form_params
        assert request.header("authorization") is None
        assert request.header("accept") == "application/json"
    assert device.form_params["scope"] == "repo read:org"
    assert set(device_sleeps) == {5.0}
    saved = _saved(manager.config)
    assert saved["method"] == "device_code"
    assert saved["scope"] == "repo read:org"
    assert github_server.is_access_token_live(result.access_token)


def test_github_device_slow_down_adds_five(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    # The fake reports slow_down with HTTP 200 and an error field, as GitHub does.
    github_server.fail_next(error="slow_down")
    manager = _device_manager(github_server)

    def approve_after_slow_down(user_code: str) -> None:
        _wait_for(lambda: len(github_server.token_requests) >= 3)
        github_server.approve_device(user_code)

    result, _ = _run_device_flow(manager, approve_after_slow_down)

    assert result.success, result.error
    assert device_sleeps[0] == 5.0
    assert device_sleeps[1:]
    assert set(device_sleeps[1:]) == {10.0}
    # The product kept to the new interval, so the fake saw no early poll.
    assert github_server.last_device_authorization.interval == 5


def test_github_device_denied_message(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    manager = _device_manager(github_server)

    result, _ = _run_device_flow(manager, github_server.deny_device)

    assert not result.success
    assert "interactive sign-in: " in result.error
    assert (
        "the sign-in was denied on the verification page. Run it again and "
        "approve the request" in result.error
    )
    assert not manager.config.resolved_token_path.exists()


def test_github_device_expired_message(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    manager = _device_manager(github_server)

    def let_code_expire(user_code: str) -> None:
        github_server.advance_time(github_server.device_code_lifetime)

    result, _ = _run_device_flow(manager, let_code_expire)

    assert not result.success
    assert "interactive sign-in: " in result.error
    assert (
        "the device code expired before the sign-in was approved. Run the "
        "sign-in again" in result.error
    )
    assert not manager.config.resolved_token_path.exists()


def test_github_device_flow_disabled_reported(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    github_server.device_flow_enabled = False
    manager = _device_manager(github_server)

    result = manager.authenticate()

    assert not result.success
    assert (
        "device_flow_disabled: Device Flow must be explicitly enabled for this App"
        in result.error
    )
    assert len(github_server.requests_to("device")) == 1
    assert github_server.token_requests == []
    assert device_sleeps == []


def test_github_public_revoke_needs_secret(
    github_server: GitHubServer, device_sleeps: list[float]
) -> None:
    # A device-flow sign-in needs no secret, but GitHub's revocation API
    # authenticates the app with Basic client_id:client_secret.
    config = _github_config(github_server, client_secret=None)
    manager = _manager(config, device=True, open_browser=False)
    result, _ = _run_device_flow(manager, github_server.approve_device)
    assert result.success, result.error
    assert _saved(config)["client_secret"] is None

    with pytest.raises(AuthError) as raised:
        manager.clear_token(revoke=True)

    assert "revoking a token needs the client secret. Set GITHUB_CLIENT_SECRET" in str(
        raised.value
    )
    assert github_server.requests_to("revoke") == []
    assert github_server.is_access_token_live(result.access_token)
    assert not config.resolved_token_path.exists()


def test_github_debug_log_has_no_secret(
    github_server: GitHubServer,
    device_sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="video_processor")
    github_server.expiring_tokens = True
    manager = _device_manager(github_server)
    result, _ = _run_device_flow(manager, github_server.approve_device)
    assert result.success, result.error
    manager.invalidate(result.access_token)
    refreshed = _batch(manager.config).authenticate()
    assert refreshed.success, refreshed.error
    manager.clear_token(revoke=True)

    (device,) = github_server.requests_to("device")
    secrets = [
        github_server.client_secret,
        device.form_params.get("device_code"),
        github_server.last_device_authorization.device_code,
        result.access_token,
        result.refresh_token,
        refreshed.access_token,
        refreshed.refresh_token,
    ]
    assert caplog.records
    assert_no_secret(caplog.text, secrets)


# -- Notion ----------------------------------------------------------------


def _notion_config(server: NotionServer, **fields: Any) -> AuthConfig:
    redirect_uri = _free_loopback_uri("/notion-callback")
    server.add_redirect_uri(redirect_uri)
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url,
        "oauth_token_url": server.token_url,
        "revocation_url": server.revoke_url,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "redirect_uri": redirect_uri,
    }
    values.update(fields)
    return dataclasses.replace(KNOWN_CONFIGS["notion"], **values)


def _notion_sign_in(
    server: NotionServer, config: Optional[AuthConfig] = None
) -> tuple[OAuthManager, Any]:
    manager = _manager(config or _notion_config(server))
    result = manager.authenticate()
    assert result.success, result.error
    return manager, result


def _assert_basic_json(server: NotionServer, request: RecordedRequest) -> None:
    assert request.basic_auth == (server.client_id, server.client_secret)
    assert request.content_type == "application/json"
    assert request.form is None
    assert isinstance(request.json, dict)


def test_notion_every_call_basic_json(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, first = _notion_sign_in(notion_server)
    manager.invalidate(first.access_token)
    second = manager.authenticate()
    assert second.success, second.error
    manager.clear_token(revoke=True)

    exchange, refresh = notion_server.token_requests
    (revoke,) = notion_server.requests_to("revoke")
    for request in (exchange, refresh, revoke):
        _assert_basic_json(notion_server, request)
    assert exchange.json == {
        "grant_type": "authorization_code",
        "code": notion_server.last_code.value,
        "redirect_uri": manager.config.redirect_uri,
    }
    assert refresh.json == {
        "grant_type": "refresh_token",
        "refresh_token": first.refresh_token,
    }
    assert revoke.json == {"token": second.access_token}


def test_notion_authorize_owner_user_no_pkce(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, _ = _notion_sign_in(notion_server)

    params = query_of(browser_env.last_run["url"])
    assert params["owner"] == "user"
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == manager.config.redirect_uri
    assert "code_challenge" not in params
    assert "code_challenge_method" not in params
    assert "code_verifier" not in notion_server.token_requests[0].json_params
    assert browser_env.listener_status == 200


def test_notion_token_stored_without_expiry(
    notion_server: NotionServer, browser_env: Any, product_clock: ProductClock
) -> None:
    manager, result = _notion_sign_in(notion_server)

    assert result.expires_at is None
    saved = _saved(manager.config)
    assert saved["expires_at"] is None
    assert saved["refresh_token"] == result.refresh_token

    notion_server.clear_requests()
    product_clock.now += 365 * 86400
    later = _batch(manager.config).authenticate()
    assert later.access_token == result.access_token
    assert notion_server.requests == []


def test_notion_invalidate_refreshes_and_rotates(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, first = _notion_sign_in(notion_server)
    batch = _batch(manager.config)
    notion_server.clear_requests()

    batch.invalidate(first.access_token)
    second = batch.authenticate()

    assert second.success, second.error
    assert second.method == "saved_token"
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert len(notion_server.token_requests) == 1
    assert not notion_server.is_refresh_token_live(first.refresh_token)
    assert notion_server.is_refresh_token_live(second.refresh_token)
    saved = _saved(manager.config)
    assert saved["access_token"] == second.access_token
    assert saved["refresh_token"] == second.refresh_token
    assert saved["expires_at"] is None


def test_notion_httpx_auth_refreshes_on_401(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, first = _notion_sign_in(notion_server)
    notion_server.clear_requests()

    def accepts(token: str) -> bool:
        return token != first.access_token and notion_server.is_access_token_live(token)

    auth = OAuthManagerAuth(_batch(manager.config))
    with (
        ResourceServer(accepts) as api,
        httpx.Client(auth=auth, trust_env=False) as client,
    ):
        response = client.get(api.url)

    assert response.status_code == 200
    new_token = _saved(manager.config)["access_token"]
    assert api.seen_tokens == [first.access_token, new_token]
    assert len(notion_server.token_requests) == 1
    assert not notion_server.is_refresh_token_live(first.refresh_token)


def test_notion_429_retry_after_honoured(
    notion_server: NotionServer, browser_env: Any, sleeps: list[float]
) -> None:
    manager, first = _notion_sign_in(notion_server)
    notion_server.clear_requests()
    notion_server.fail_next(429, retry_after=3)

    manager.invalidate(first.access_token)
    second = manager.authenticate()

    assert second.success, second.error
    assert second.access_token != first.access_token
    assert sleeps == [3.0]
    assert len(notion_server.token_requests) == 2


def test_notion_500_retried(
    notion_server: NotionServer, browser_env: Any, sleeps: list[float]
) -> None:
    manager, first = _notion_sign_in(notion_server)
    notion_server.clear_requests()
    notion_server.fail_next(500)

    manager.invalidate(first.access_token)
    second = manager.authenticate()

    assert second.success, second.error
    assert len(notion_server.token_requests) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("error_style", ["api", "oauth"])
def test_notion_invalid_grant_readable_once(
    notion_server: NotionServer,
    browser_env: Any,
    sleeps: list[float],
    error_style: str,
) -> None:
    notion_server.error_style = error_style
    manager, first = _notion_sign_in(notion_server)
    notion_server.revoke_all()
    notion_server.clear_requests()

    batch = _batch(manager.config)
    batch.invalidate(first.access_token)
    result = batch.authenticate()

    assert not result.success
    assert (
        "saved token: token refresh rejected by the service (invalid_grant: "
        "Invalid refresh token.); sign in again with `planopticon auth notion`"
        in result.error
    )
    assert len(notion_server.token_requests) == 1
    assert sleeps == []


def test_notion_wrong_secret_readable(
    notion_server: NotionServer, browser_env: Any, sleeps: list[float]
) -> None:
    wrong_secret = "wrong-" + notion_server.client_secret
    config = _notion_config(notion_server, client_secret=wrong_secret)

    result = _manager(config).authenticate()

    assert not result.success
    assert (
        "rejected by the service (unauthorized: Client authentication failed.)"
        in result.error
    )
    assert len(notion_server.token_requests) == 1
    assert sleeps == []
    assert_no_secret(result.error, [wrong_secret, notion_server.client_secret])


def test_notion_revoke_basic_json_token(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, result = _notion_sign_in(notion_server)

    manager.clear_token(revoke=True)

    (revoke,) = notion_server.requests_to("revoke")
    _assert_basic_json(notion_server, revoke)
    assert revoke.json == {"token": result.access_token}
    assert notion_server.revoked_tokens == [result.access_token]
    assert not notion_server.is_access_token_live(result.access_token)
    assert not notion_server.is_refresh_token_live(result.refresh_token)
    assert not manager.config.resolved_token_path.exists()


def test_notion_failed_revoke_reports_and_removes(
    notion_server: NotionServer, browser_env: Any
) -> None:
    manager, result = _notion_sign_in(notion_server)
    notion_server.revoke_all()

    with pytest.raises(AuthError) as raised:
        manager.clear_token(revoke=True)

    assert "invalid_grant: Invalid token" in str(raised.value)
    assert not manager.config.resolved_token_path.exists()
    assert_no_secret(str(raised.value), [result.access_token, result.refresh_token])


def test_notion_without_secret_fails_early(
    notion_server: NotionServer, browser_env: Any
) -> None:
    config = _notion_config(notion_server, client_secret=None)

    result = _manager(config).authenticate()

    assert not result.success
    assert "interactive sign-in: " in result.error
    assert (
        "the client authenticates with client_secret_basic, which needs a "
        "client secret, and none is configured. Set NOTION_CLIENT_SECRET"
        in result.error
    )
    assert browser_env.runs == []
    assert notion_server.requests == []


@pytest.mark.parametrize("service", ["notion", "dropbox"])
def test_no_device_flow_offered(
    service: str, notion_server: NotionServer, dropbox_server: DropboxServer
) -> None:
    if service == "notion":
        config = _notion_config(notion_server)
    else:
        config = _dropbox_config(dropbox_server)
    assert config.device_authorization_url is None

    result = _manager(config, device=True, open_browser=False).authenticate()

    assert not result.success
    assert "interactive sign-in: " in result.error
    assert (
        "the device flow needs a device_authorization_url, and none is "
        "configured" in result.error
    )
    assert notion_server.requests == []
    assert dropbox_server.requests == []


def test_notion_oob_redirect_rejected_early(
    notion_server: NotionServer,
    browser_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Notion offers no out-of-band redirect, so no page ever shows a code to
    # paste. The fake rejects the URN as an unregistered redirect URI.
    monkeypatch.setenv("NOTION_REDIRECT_URI", "urn:ietf:wg:oauth:2.0:oob")
    config = _notion_config(notion_server)
    manager = _manager(config, stdin=TypedInput(lambda: None))

    result = manager.authenticate()

    assert not result.success
    assert "urn:ietf:wg:oauth:2.0:oob" in result.error
    assert "NOTION_REDIRECT_URI" in result.error
    assert browser_env.runs == []
    assert notion_server.requests == []


def test_notion_debug_log_has_no_secret(
    notion_server: NotionServer,
    browser_env: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="video_processor")
    manager, first = _notion_sign_in(notion_server)
    code = notion_server.last_code.value
    manager.invalidate(first.access_token)
    second = manager.authenticate()
    manager.clear_token(revoke=True)

    secrets = [
        notion_server.client_secret,
        code,
        first.access_token,
        first.refresh_token,
        second.access_token,
        second.refresh_token,
    ]
    assert caplog.records
    assert_no_secret(caplog.text, secrets)
    assert_no_secret(_console_text(manager), secrets)
