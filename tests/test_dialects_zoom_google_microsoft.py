"""Zoom, Google and Microsoft dialects, driven through the product.

Every test starts from the service's own entry (``get_auth_config``) and
changes only endpoint URLs and client credentials to point at a loopback fake
of that service (``support.providers``). The dialect therefore follows the
service name, exactly as it does against the real hosts. The expected
behaviour is what each service documents, as the fakes model it: Zoom's OAuth
and server-to-server OAuth pages, Google's native-app, offline-access, OOB
migration and limited-input device guides, and the Microsoft identity
platform's auth-code, device-code, client-credentials, refresh-token and
reply-URL pages. Each fake's module docstring names the pages.

The only replaced piece of the product is ``_clock.sleep``, so that back-off
and device polling waits are recorded instead of slept.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from support.auth_helpers import (
    UnreadableInput,
    expire_saved_token,
    query_of,
    write_service_table,
)
from support.providers import GoogleServer, MicrosoftServer, ZoomServer
from support.providers.base import AuthorizationCode, ProviderServer
from support.secrets_check import assert_no_secret
from video_processor.auth import AuthConfig, OAuthManager, _clock, get_auth_config
from video_processor.auth.console import Console
from video_processor.auth.errors import RevocationError
from video_processor.auth.result import AuthResult
from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken
from video_processor.cli.main import cli

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
GOOGLE_DEVICE_SCOPES = ["openid", "email", "https://www.googleapis.com/auth/drive.file"]
USER_CODE = re.compile(r"enter the code:\s+(\S+)")
OOB = "urn:ietf:wg:oauth:2.0:oob"

# Building a TLS context for each httpx.Client is slow, so every client shares
# this one. The fakes serve plain HTTP and never use it.
TLS_CONTEXT = ssl.create_default_context()


# -- configuration -------------------------------------------------------


def zoom_config(server: ZoomServer, **fields: Any) -> AuthConfig:
    """Return the Zoom entry pointed at the fake Zoom server."""
    base = get_auth_config("zoom")
    assert base is not None
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url,
        "oauth_token_url": server.token_url,
        "device_authorization_url": server.device_authorization_url,
        "revocation_url": server.revoke_url,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    values.update(fields)
    return dataclasses.replace(base, **values)


def google_config(server: GoogleServer, **fields: Any) -> AuthConfig:
    """Return the Google entry pointed at the fake Google server."""
    base = get_auth_config("google")
    assert base is not None
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url,
        "oauth_token_url": server.token_url,
        "device_authorization_url": server.device_authorization_url,
        "revocation_url": server.revoke_url,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    values.update(fields)
    return dataclasses.replace(base, **values)


def microsoft_config(server: MicrosoftServer, **fields: Any) -> AuthConfig:
    """Return the Microsoft entry pointed at the fake, as a public client.

    The URLs keep the documented ``common`` tenant segment, which the
    product replaces when a tenant is configured.
    """
    base = get_auth_config("microsoft")
    assert base is not None
    values: dict[str, Any] = {
        "oauth_authorize_url": server.authorize_url_for("common"),
        "oauth_token_url": server.token_url_for("common"),
        "device_authorization_url": server.device_authorization_url_for("common"),
        "client_id": server.client_id,
    }
    values.update(fields)
    return dataclasses.replace(base, **values)


CONFIG_BUILDERS: dict[str, Callable[..., AuthConfig]] = {
    "zoom": zoom_config,
    "google": google_config,
    "microsoft": microsoft_config,
}
SERVICES = sorted(CONFIG_BUILDERS)


@pytest.fixture(params=SERVICES)
def service_server(
    request: pytest.FixtureRequest,
) -> tuple[str, ProviderServer]:
    """Each of the three fakes in turn, with the service name."""
    name = request.param
    server = request.getfixturevalue(f"{name}_server")
    return name, server


# -- driving the product -------------------------------------------------


class LoopbackBrowser:
    """In-process stand-in for a browser that follows one redirect.

    It opens the sign-in URL at the fake, which redirects at once, and then
    requests the redirect target (the product's listener), as a browser
    would. Only loopback hosts are contacted.
    """

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.page_status: Optional[int] = None
        self.listener_status: Optional[int] = None

    def __call__(self, url: str) -> bool:
        self.urls.append(url)
        with httpx.Client(timeout=5.0, trust_env=False, verify=TLS_CONTEXT) as client:
            page = client.get(_loopback_only(url))
            self.page_status = page.status_code
            if page.is_redirect:
                target = str(page.url.join(page.headers["location"]))
                listener = client.get(_loopback_only(target))
                self.listener_status = listener.status_code
        return True

    @property
    def sent(self) -> dict[str, str]:
        """The query parameters of the last sign-in URL."""
        assert self.urls, "the product opened no sign-in URL"
        return query_of(self.urls[-1])


def _loopback_only(url: str) -> str:
    host = urlsplit(url).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), f"non-loopback URL {url}"
    return url


@pytest.fixture
def browser() -> LoopbackBrowser:
    return LoopbackBrowser()


def make_manager(
    config: AuthConfig, browser: Optional[LoopbackBrowser] = None, **kwargs: Any
) -> OAuthManager:
    """Return an interactive manager whose console reads nothing."""
    console = Console(
        stdin=UnreadableInput(), stderr=io.StringIO(), open_browser=browser
    )
    kwargs.setdefault("interactive", True)
    # Without BROWSER or DISPLAY the product would choose the device flow for
    # Zoom and Microsoft, so the browser flow is asked for explicitly.
    kwargs.setdefault("device", False)
    kwargs.setdefault("login_timeout", 10.0)
    return OAuthManager(config, console=console, **kwargs)


def console_text(manager: OAuthManager) -> str:
    return manager._console.stderr.getvalue()  # type: ignore[union-attr]


def sign_in(config: AuthConfig, browser: LoopbackBrowser, **kwargs: Any) -> AuthResult:
    """Sign in with the browser flow and fail the test if it does not succeed."""
    result = make_manager(config, browser, **kwargs).authenticate()
    assert result.success, result.error
    return result


def refresh_saved(config: AuthConfig) -> AuthResult:
    """Expire the saved token and run the chain without a person."""
    expire_saved_token(config.resolved_token_path)
    return OAuthManager(config, interactive=False).authenticate()


def saved(config: AuthConfig) -> dict[str, Any]:
    return json.loads(config.resolved_token_path.read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the machine look like an SSH session with no display or browser."""
    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every back-off the product requests instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(_clock, "sleep", recorded.append)
    return recorded


def fast_polling(
    monkeypatch: pytest.MonkeyPatch, server: ProviderServer
) -> list[float]:
    """Make each device-flow wait move the fake's clock instead of sleeping.

    The fake enforces the polling interval on its own clock, so advancing it
    by the requested wait keeps the interval honoured. A short real pause
    lets the approving thread run.
    """
    recorded: list[float] = []

    def wait(seconds: float) -> None:
        recorded.append(seconds)
        server.advance_time(seconds)
        time.sleep(0.02)

    monkeypatch.setattr(_clock, "sleep", wait)
    return recorded


class DeviceApprover(threading.Thread):
    """Approve a device sign-in at the fake once the product shows the code.

    With ``deny`` it denies the sign-in instead.
    """

    def __init__(
        self, server: ProviderServer, manager: OAuthManager, *, deny: bool = False
    ) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.manager = manager
        self.deny = deny
        self.user_code: Optional[str] = None
        # Set when the sign-in ended, so a failed one does not keep this waiting.
        self.finished = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.finished.is_set():
            match = USER_CODE.search(console_text(self.manager))
            if match:
                self.user_code = match.group(1)
                if self.deny:
                    self.server.deny_device(self.user_code)
                else:
                    self.server.approve_device(self.user_code)
                return
            time.sleep(0.01)


def device_sign_in(
    config: AuthConfig, server: ProviderServer, *, deny: bool = False
) -> tuple[AuthResult, OAuthManager, DeviceApprover]:
    manager = make_manager(config, device=True, open_browser=False)
    approver = DeviceApprover(server, manager, deny=deny)
    approver.start()
    try:
        result = manager.authenticate()
    finally:
        approver.finished.set()
        approver.join(10)
    return result, manager, approver


# -- Zoom ----------------------------------------------------------------


def test_zoom_default_redirect_is_registered(
    zoom_server: ZoomServer, browser_env
) -> None:
    config = zoom_config(zoom_server)
    assert config.redirect_uri == "http://127.0.0.1:8765/callback"
    assert config.redirect_uri in zoom_server.client.redirect_uris

    # This sign-in goes through webbrowser.open and the fake browser script,
    # as a person's would. The other tests use LoopbackBrowser.
    console = Console(stdin=UnreadableInput(), stderr=io.StringIO())
    result = OAuthManager(config, interactive=True, console=console).authenticate()

    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert result.refresh_token
    sent = query_of(browser_env.last_run["url"])
    assert sent["redirect_uri"] == "http://127.0.0.1:8765/callback"
    assert browser_env.listener_status == 200
    exchange = zoom_server.token_requests[0]
    assert exchange.form_params["redirect_uri"] == "http://127.0.0.1:8765/callback"


def test_zoom_redirect_env_overrides_default(
    zoom_server: ZoomServer, browser: LoopbackBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/zoom/done"
    zoom_server.add_redirect_uri(redirect_uri)
    monkeypatch.setenv("ZOOM_REDIRECT_URI", redirect_uri)

    sign_in(zoom_config(zoom_server), browser)

    assert browser.sent["redirect_uri"] == redirect_uri
    assert zoom_server.last_code is not None
    assert zoom_server.last_code.redirect_uri == redirect_uri


def test_zoom_authorize_sends_explicit_s256(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    sign_in(zoom_config(zoom_server), browser)

    sent = browser.sent
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    assert zoom_server.last_code is not None
    assert zoom_server.last_code.code_challenge_method == "S256"


def test_zoom_code_exchange_uses_basic_auth(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    sign_in(zoom_config(zoom_server), browser)

    (exchange,) = zoom_server.token_requests
    assert exchange.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    form = exchange.form_params
    assert form["grant_type"] == "authorization_code"
    assert form["code_verifier"]
    assert "client_secret" not in form
    assert "client_secret" not in exchange.query


def test_zoom_refresh_rotates_refresh_token(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    config = zoom_config(zoom_server)
    first = sign_in(config, browser)
    zoom_server.clear_requests()

    again = refresh_saved(config)

    assert again.success, again.error
    assert again.method == "saved_token"
    (refresh,) = zoom_server.token_requests
    assert refresh.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    assert refresh.form_params["refresh_token"] == first.refresh_token
    assert "refresh_token" not in refresh.query
    assert again.refresh_token != first.refresh_token
    assert not zoom_server.is_refresh_token_live(first.refresh_token)
    assert zoom_server.is_refresh_token_live(again.refresh_token)
    assert saved(config)["refresh_token"] == again.refresh_token


def test_zoom_rotated_refresh_token_rejected(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    config = zoom_config(zoom_server)
    first = sign_in(config, browser)
    assert refresh_saved(config).success
    stale = saved(config)
    stale["refresh_token"] = first.refresh_token
    config.resolved_token_path.write_text(json.dumps(stale))
    zoom_server.clear_requests()

    result = refresh_saved(config)

    assert not result.success
    assert result.error is not None
    assert (
        "zoom: no authentication method succeeded. saved token: token refresh "
        "rejected by the service (invalid_request: Invalid Token!); sign in again "
        "with `planopticon auth zoom`" in result.error
    )
    assert len(zoom_server.token_requests) == 1


def test_zoom_s2s_uses_account_credentials(
    zoom_server: ZoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOM_ACCOUNT_ID", zoom_server.account_id)
    config = zoom_config(zoom_server)

    result = OAuthManager(config, interactive=False).authenticate()

    assert result.success, result.error
    assert result.method == "client_credentials"
    assert result.refresh_token is None
    (request,) = zoom_server.token_requests
    assert request.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    assert request.query_params == {
        "grant_type": "account_credentials",
        "account_id": zoom_server.account_id,
    }
    assert request.body == b""
    record = saved(config)
    assert record["method"] == "client_credentials"
    assert record["refresh_token"] is None
    assert record["access_token"] == result.access_token


def test_zoom_expired_s2s_token_fetched_again(
    zoom_server: ZoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOOM_ACCOUNT_ID", zoom_server.account_id)
    config = zoom_config(zoom_server)
    first = OAuthManager(config, interactive=False).authenticate()
    assert first.success, first.error

    reused = OAuthManager(config, interactive=False).authenticate()
    assert reused.access_token == first.access_token
    assert zoom_server.s2s_request_count == 1

    again = refresh_saved(config)

    assert again.success, again.error
    assert again.method == "client_credentials"
    assert again.access_token != first.access_token
    assert zoom_server.s2s_request_count == 2
    assert zoom_server.is_access_token_live(again.access_token)
    assert saved(config)["access_token"] == again.access_token


def test_zoom_revoke_uses_basic_auth_form(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    config = zoom_config(zoom_server)
    result = sign_in(config, browser)
    manager = OAuthManager(config, interactive=False)

    manager.clear_token(revoke=True)

    (revoke,) = zoom_server.requests_to("revoke")
    assert revoke.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    assert revoke.form_params == {"token": result.access_token}
    assert revoke.query == {}
    assert not zoom_server.is_access_token_live(result.access_token)
    assert not zoom_server.is_refresh_token_live(result.refresh_token)
    assert not config.resolved_token_path.exists()


def test_zoom_device_flow_signs_in(
    zoom_server: ZoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    polling = fast_polling(monkeypatch, zoom_server)
    config = zoom_config(zoom_server)

    result, manager, approver = device_sign_in(config, zoom_server)

    assert result.success, result.error
    assert result.method == "device_code"
    assert result.refresh_token
    assert f"enter the code:  {approver.user_code}" in console_text(manager)
    assert zoom_server.verification_uri in console_text(manager)
    (device,) = zoom_server.requests_to("device")
    assert device.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    polls = zoom_server.token_requests
    assert polls
    for poll in polls:
        assert poll.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    assert set(polling) == {5.0}
    assert saved(config)["method"] == "device_code"


def test_zoom_device_flow_not_enabled_fails(
    zoom_server: ZoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_polling(monkeypatch, zoom_server)
    zoom_server.device_flow_enabled = False

    result, _, _ = device_sign_in(zoom_config(zoom_server), zoom_server)

    assert not result.success
    assert result.error is not None
    assert (
        "(unauthorized_client: Device authorization is not enabled for this app.)"
        in result.error
    )
    assert len(zoom_server.requests_to("device")) == 1
    assert zoom_server.token_requests == []


def test_zoom_headless_picks_device_flow(
    zoom_server: ZoomServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    headless(monkeypatch)
    fast_polling(monkeypatch, zoom_server)
    manager = make_manager(zoom_config(zoom_server), device=None)
    approver = DeviceApprover(zoom_server, manager)
    approver.start()
    try:
        result = manager.authenticate()
    finally:
        approver.finished.set()
        approver.join(10)

    assert result.success, result.error
    assert result.method == "device_code"
    assert len(zoom_server.requests_to("device")) == 1


def test_zoom_headless_without_device_flow_signs_in(
    zoom_server: ZoomServer, browser: LoopbackBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Zoom turns the device flow on per app, on request. An app without it
    # must still be able to sign in on a machine with no display, where the
    # product prefers the device flow.
    headless(monkeypatch)
    zoom_server.device_flow_enabled = False

    result = make_manager(zoom_config(zoom_server), browser, device=None).authenticate()

    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert browser.listener_status == 200


def test_zoom_rejected_code_not_in_error(
    zoom_server: ZoomServer, browser: LoopbackBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Zoom's error for a bad code repeats the code, which must not reach the
    # product's message. The fake issues codes that are already expired.
    issue_code = zoom_server.issue_code

    def issue_expired_code(*args: Any, **kwargs: Any) -> AuthorizationCode:
        code = issue_code(*args, **kwargs)
        code.expires_at = zoom_server.now() - 1
        return code

    monkeypatch.setattr(zoom_server, "issue_code", issue_expired_code)

    result = make_manager(zoom_config(zoom_server), browser).authenticate()

    assert not result.success
    assert result.error is not None
    assert zoom_server.last_code is not None
    assert "invalid_request: Invalid authorization code ***" in result.error
    assert_no_secret(result.error, [zoom_server.last_code.value])
    assert len(zoom_server.token_requests) == 1


def test_zoom_busy_redirect_port_fails_cleanly(
    zoom_server: ZoomServer, browser: LoopbackBrowser
) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{port}/callback"
        zoom_server.add_redirect_uri(redirect_uri)
        config = zoom_config(zoom_server, redirect_uri=redirect_uri)

        result = make_manager(config, browser).authenticate()

    assert not result.success
    assert result.error is not None
    assert str(port) in result.error
    assert browser.urls == []


# -- Google --------------------------------------------------------------


def test_google_authorize_requests_offline_access(
    google_server: GoogleServer, browser: LoopbackBrowser
) -> None:
    config = google_config(google_server)

    result = sign_in(config, browser)

    sent = browser.sent
    assert sent["access_type"] == "offline"
    assert sent["prompt"] == "consent"
    assert sent["code_challenge_method"] == "S256"
    assert result.refresh_token
    assert google_server.is_refresh_token_live(result.refresh_token)
    assert saved(config)["refresh_token"] == result.refresh_token


def test_google_loopback_redirect_gets_any_port(
    google_server: GoogleServer, browser: LoopbackBrowser
) -> None:
    config = google_config(google_server)
    assert config.redirect_uri == "http://127.0.0.1"
    assert google_server.client.redirect_uris == []

    sign_in(config, browser)

    sent = urlsplit(browser.sent["redirect_uri"])
    assert sent.scheme == "http"
    assert sent.hostname == "127.0.0.1"
    assert sent.port is not None
    assert sent.port > 0
    assert browser.listener_status == 200


def test_google_secret_sent_at_exchange_and_refresh(
    google_server: GoogleServer, browser: LoopbackBrowser
) -> None:
    config = google_config(google_server)
    sign_in(config, browser)
    assert refresh_saved(config).success

    exchange, refresh = google_server.token_requests
    assert exchange.form_params["grant_type"] == "authorization_code"
    assert exchange.form_params["code_verifier"]
    assert exchange.form_params["client_id"] == google_server.client_id
    assert exchange.form_params["client_secret"] == google_server.client_secret
    assert exchange.basic_auth is None
    assert refresh.form_params["grant_type"] == "refresh_token"
    assert refresh.form_params["client_secret"] == google_server.client_secret


def test_google_refresh_keeps_refresh_token(
    google_server: GoogleServer, browser: LoopbackBrowser
) -> None:
    config = google_config(google_server)
    first = sign_in(config, browser)

    again = refresh_saved(config)

    assert again.success, again.error
    assert again.access_token != first.access_token
    assert again.refresh_token == first.refresh_token
    record = saved(config)
    assert record["refresh_token"] == first.refresh_token
    assert record["access_token"] == again.access_token
    assert record["method"] == "oauth_pkce"


@pytest.mark.parametrize("via_env", [False, True], ids=["field", "env"])
def test_google_oob_redirect_rejected(
    google_server: GoogleServer,
    browser: LoopbackBrowser,
    monkeypatch: pytest.MonkeyPatch,
    via_env: bool,
) -> None:
    if via_env:
        monkeypatch.setenv("GOOGLE_REDIRECT_URI", OOB)
        config = google_config(google_server)
    else:
        config = google_config(google_server, redirect_uri=OOB)

    result = make_manager(config, browser).authenticate()

    assert not result.success
    assert result.error is not None
    assert (
        "the out-of-band redirect URI urn:ietf:wg:oauth:2.0:oob is not accepted "
        "by the service." in result.error
    )
    assert "(set GOOGLE_REDIRECT_URI)" in result.error
    assert google_server.requests == []
    assert browser.urls == []


def test_google_revoke_sends_no_client_auth(
    google_server: GoogleServer, browser: LoopbackBrowser
) -> None:
    config = google_config(google_server)
    result = sign_in(config, browser)

    OAuthManager(config, interactive=False).clear_token(revoke=True)

    (revoke,) = google_server.requests_to("revoke")
    assert revoke.header("authorization") is None
    assert revoke.form_params == {"token": result.refresh_token}
    assert not google_server.is_refresh_token_live(result.refresh_token)
    assert not google_server.is_access_token_live(result.access_token)
    assert not config.resolved_token_path.exists()


def test_google_device_flow_signs_in(
    google_server: GoogleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    google_server.client_type = "tv"
    polling = fast_polling(monkeypatch, google_server)
    config = google_config(google_server, scopes=GOOGLE_DEVICE_SCOPES)

    result, manager, approver = device_sign_in(config, google_server)

    assert result.success, result.error
    assert result.method == "device_code"
    assert result.refresh_token
    instructions = console_text(manager)
    # Google's device response names the URL verification_url, not the
    # RFC 8628 verification_uri.
    assert google_server.verification_url in instructions
    assert f"enter the code:  {approver.user_code}" in instructions
    (device,) = google_server.requests_to("device")
    assert device.form_params["scope"] == " ".join(GOOGLE_DEVICE_SCOPES)
    for poll in google_server.token_requests:
        assert poll.form_params["client_secret"] == google_server.client_secret
    assert set(polling) == {5.0}
    assert saved(config)["method"] == "device_code"


def test_google_device_flow_desktop_client_rejected(
    google_server: GoogleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_polling(monkeypatch, google_server)
    config = google_config(google_server, scopes=GOOGLE_DEVICE_SCOPES)

    result, _, _ = device_sign_in(config, google_server)

    assert not result.success
    assert result.error is not None
    assert "invalid_client: Invalid client type." in result.error
    assert len(google_server.requests_to("device")) == 1


def test_google_headless_uses_browser_flow(
    google_server: GoogleServer,
    browser: LoopbackBrowser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Google's device flow serves only "TVs and Limited Input" clients, so a
    # desktop client on a machine with no display keeps the browser flow.
    headless(monkeypatch)

    result = make_manager(
        google_config(google_server), browser, device=None
    ).authenticate()

    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert google_server.requests_to("device") == []


@pytest.mark.parametrize("cause", ["revoked", "testing_app_expiry"])
def test_google_dead_refresh_token_not_retried(
    google_server: GoogleServer,
    browser: LoopbackBrowser,
    waits: list[float],
    cause: str,
) -> None:
    if cause == "testing_app_expiry":
        # Google documents that refresh tokens of apps in "Testing" expire
        # after 7 days.
        google_server.refresh_token_lifetime = 7 * 24 * 3600
    config = google_config(google_server)
    sign_in(config, browser)
    if cause == "revoked":
        google_server.revoke_all()
    else:
        google_server.advance_time(7 * 24 * 3600 + 1)
    google_server.clear_requests()

    result = refresh_saved(config)

    assert not result.success
    assert result.error is not None
    assert (
        "saved token: token refresh rejected by the service (invalid_grant: Token "
        "has been expired or revoked.); sign in again with `planopticon auth "
        "google`" in result.error
    )
    assert len(google_server.token_requests) == 1
    assert waits == []


# -- Microsoft -----------------------------------------------------------


def test_microsoft_tenant_env_in_request_paths(
    microsoft_server: MicrosoftServer,
    browser: LoopbackBrowser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = microsoft_server.tenant_id
    monkeypatch.setenv("MICROSOFT_TENANT", tenant)
    config = microsoft_config(microsoft_server)

    sign_in(config, browser)
    assert refresh_saved(config).success

    authorize_path = urlsplit(browser.urls[-1]).path
    assert authorize_path == f"/{tenant}/oauth2/v2.0/authorize"
    assert [r.path for r in microsoft_server.token_requests] == [
        f"/{tenant}/oauth2/v2.0/token",
        f"/{tenant}/oauth2/v2.0/token",
    ]
    assert set(microsoft_server.tenants_seen) == {tenant}


def test_microsoft_public_client_sends_no_secret(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    config = microsoft_config(microsoft_server)
    assert config.resolved_client_secret is None

    sign_in(config, browser)
    assert refresh_saved(config).success

    for request in microsoft_server.token_requests:
        assert request.form_params["client_id"] == microsoft_server.client_id
        assert "client_secret" not in request.form_params
        assert request.header("authorization") is None


def test_microsoft_confidential_client_sends_secret(
    microsoft_server: MicrosoftServer,
    browser: LoopbackBrowser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    microsoft_server.public_client = False
    monkeypatch.setenv("MICROSOFT_CLIENT_SECRET", microsoft_server.client_secret)
    config = microsoft_config(microsoft_server)

    sign_in(config, browser)
    assert refresh_saved(config).success

    for request in microsoft_server.token_requests:
        assert request.form_params["client_secret"] == microsoft_server.client_secret


@pytest.mark.parametrize(
    ("public_client", "configure_secret", "expected"),
    [
        (True, True, "invalid_client: AADSTS700025: Client is public"),
        (False, False, "invalid_client: AADSTS7000218: The request body must"),
    ],
    ids=["secret_for_public", "no_secret_for_confidential"],
)
def test_microsoft_client_type_mismatch_rejected(
    microsoft_server: MicrosoftServer,
    browser: LoopbackBrowser,
    waits: list[float],
    public_client: bool,
    configure_secret: bool,
    expected: str,
) -> None:
    microsoft_server.public_client = public_client
    secret = microsoft_server.client_secret if configure_secret else None
    config = microsoft_config(microsoft_server, client_secret=secret)

    result = make_manager(config, browser).authenticate()

    assert not result.success
    assert result.error is not None
    assert "sign-in rejected by the service (" + expected in result.error
    assert len(microsoft_server.token_requests) == 1
    assert waits == []


def test_microsoft_requests_offline_access(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    config = microsoft_config(microsoft_server)

    result = sign_in(config, browser)

    scopes = browser.sent["scope"].split()
    assert scopes == [
        "https://graph.microsoft.com/OnlineMeetings.Read",
        "https://graph.microsoft.com/Files.Read",
        "offline_access",
    ]
    assert result.refresh_token
    assert microsoft_server.is_refresh_token_live(result.refresh_token)


def test_microsoft_localhost_redirect_any_port(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    config = microsoft_config(microsoft_server)
    assert config.redirect_uri == "http://localhost"

    sign_in(config, browser)

    sent = urlsplit(browser.sent["redirect_uri"])
    assert sent.hostname == "localhost"
    assert sent.port is not None
    assert browser.listener_status == 200


def test_microsoft_refresh_keeps_newest_refresh_token(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    # With used refresh tokens revoked, only a client that keeps the newest
    # one can refresh twice.
    microsoft_server.revoke_used_refresh_tokens = True
    config = microsoft_config(microsoft_server)
    first = sign_in(config, browser)

    second = refresh_saved(config)
    third = refresh_saved(config)

    assert second.success, second.error
    assert third.success, third.error
    issued = [first.refresh_token, second.refresh_token, third.refresh_token]
    assert len(set(issued)) == 3
    sent = [r.form_params.get("refresh_token") for r in microsoft_server.token_requests]
    assert sent[1:] == issued[:2]
    assert saved(config)["refresh_token"] == third.refresh_token
    assert microsoft_server.is_refresh_token_live(third.refresh_token)


def test_microsoft_app_only_client_credentials(
    microsoft_server: MicrosoftServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    microsoft_server.public_client = False
    tenant = microsoft_server.tenant_id
    monkeypatch.setenv("MICROSOFT_TENANT_ID", tenant)
    monkeypatch.setenv("MICROSOFT_CLIENT_SECRET", microsoft_server.client_secret)
    config = microsoft_config(microsoft_server)

    result = OAuthManager(config, interactive=False).authenticate()

    assert result.success, result.error
    assert result.method == "client_credentials"
    assert result.refresh_token is None
    (request,) = microsoft_server.token_requests
    assert request.path == f"/{tenant}/oauth2/v2.0/token"
    assert request.form_params["grant_type"] == "client_credentials"
    assert request.form_params["scope"] == GRAPH_DEFAULT
    assert request.form_params["client_secret"] == microsoft_server.client_secret
    record = saved(config)
    assert record["method"] == "client_credentials"
    assert record["refresh_token"] is None


@pytest.mark.parametrize(
    ("common_tenant", "with_secret", "expected"),
    [
        (True, True, "app-only sign-in needs a tenant ID or domain, not 'common'"),
        (False, False, "server-to-server sign-in needs a client secret"),
    ],
    ids=["common_tenant", "no_secret"],
)
def test_microsoft_app_only_misconfigured(
    microsoft_server: MicrosoftServer,
    monkeypatch: pytest.MonkeyPatch,
    common_tenant: bool,
    with_secret: bool,
    expected: str,
) -> None:
    microsoft_server.public_client = False
    tenant = "common" if common_tenant else microsoft_server.tenant_id
    monkeypatch.setenv("MICROSOFT_TENANT_ID", tenant)
    if with_secret:
        monkeypatch.setenv("MICROSOFT_CLIENT_SECRET", microsoft_server.client_secret)

    result = OAuthManager(
        microsoft_config(microsoft_server), interactive=False
    ).authenticate()

    assert not result.success
    assert result.error is not None
    assert expected in result.error
    assert microsoft_server.requests == []


def test_microsoft_revoke_explains_no_endpoint(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    config = microsoft_config(microsoft_server)
    sign_in(config, browser)
    microsoft_server.clear_requests()

    with pytest.raises(RevocationError) as raised:
        OAuthManager(config, interactive=False).clear_token(revoke=True)

    assert "the Microsoft identity platform has no token revocation endpoint" in str(
        raised.value
    )
    assert raised.value.still_live == "refresh token"
    assert not config.resolved_token_path.exists()
    assert microsoft_server.requests == []


def test_microsoft_ipv6_loopback_redirect_rejected(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    # Microsoft's reply-URL rules do not support [::1], so the sign-in should
    # stop with a configuration error before any request is sent.
    config = microsoft_config(microsoft_server, redirect_uri="http://[::1]/callback")

    result = make_manager(config, browser, login_timeout=2.0).authenticate()

    assert not result.success
    assert result.error is not None
    assert "[::1]" in result.error
    assert browser.urls == []
    assert microsoft_server.requests_to("authorize") == []
    assert microsoft_server.token_requests == []


def test_microsoft_mixed_resource_scopes_rejected(
    microsoft_server: MicrosoftServer, browser: LoopbackBrowser
) -> None:
    scopes = [
        "https://graph.microsoft.com/Files.Read",
        "https://outlook.office.com/Mail.Read",
    ]
    config = microsoft_config(microsoft_server, scopes=scopes)

    result = make_manager(config, browser).authenticate()

    assert not result.success
    assert result.error is not None
    assert "invalid_scope: AADSTS28000" in result.error
    assert microsoft_server.token_requests == []


def test_microsoft_device_flow_uses_tenant(
    microsoft_server: MicrosoftServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = microsoft_server.tenant_domain
    monkeypatch.setenv("MICROSOFT_TENANT", tenant)
    fast_polling(monkeypatch, microsoft_server)
    config = microsoft_config(microsoft_server)

    result, manager, _ = device_sign_in(config, microsoft_server)

    assert result.success, result.error
    assert result.method == "device_code"
    assert result.refresh_token
    (device,) = microsoft_server.requests_to("device")
    assert device.path == f"/{tenant}/oauth2/v2.0/devicecode"
    assert "offline_access" in device.form_params["scope"].split()
    assert "client_secret" not in device.form_params
    assert microsoft_server.verification_uri in console_text(manager)


# -- every service: transient and permanent failures ----------------------


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503},
        {"status": 500},
        {"drop_connection": True},
        {"error": "temporarily_unavailable"},
    ],
    ids=["http_503", "http_500", "dropped_connection", "temporarily_unavailable"],
)
def test_refresh_transient_failure_retried(
    service_server: tuple[str, ProviderServer],
    browser: LoopbackBrowser,
    waits: list[float],
    failure: dict[str, Any],
) -> None:
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    first = sign_in(config, browser)
    server.clear_requests()
    server.fail_next(**failure)

    result = refresh_saved(config)

    assert result.success, result.error
    assert result.access_token != first.access_token
    assert len(server.token_requests) == 2
    assert len(waits) == 1
    # The first back-off is drawn between 0.25 and 0.5 seconds.
    assert 0 < waits[0] <= 0.5


def test_refresh_rate_limit_honours_retry_after(
    service_server: tuple[str, ProviderServer],
    browser: LoopbackBrowser,
    waits: list[float],
) -> None:
    # Each fake responds with 429 in its service's own body shape.
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    sign_in(config, browser)
    server.clear_requests()
    server.fail_next(429, retry_after=4)

    result = refresh_saved(config)

    assert result.success, result.error
    assert len(server.token_requests) == 2
    assert waits == [4.0]


def test_refresh_error_with_http_200_rejected(
    service_server: tuple[str, ProviderServer],
    browser: LoopbackBrowser,
    waits: list[float],
) -> None:
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    sign_in(config, browser)
    server.clear_requests()
    server.fail_next(200, error="invalid_grant")

    result = refresh_saved(config)

    assert not result.success
    assert result.error is not None
    assert "token refresh rejected by the service (invalid_grant: " in result.error
    assert "Injected failure: invalid_grant" in result.error
    assert len(server.token_requests) == 1
    assert waits == []


# The advice in the failure message, for each permanent error.
ADVICE = {
    "invalid_grant": "sign in again with `planopticon auth {name}`",
    "invalid_client": "check the client ID and secret",
    "invalid_scope": "check the requested scopes",
}


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client", "invalid_scope"])
def test_refresh_permanent_error_not_retried(
    service_server: tuple[str, ProviderServer],
    browser: LoopbackBrowser,
    waits: list[float],
    error: str,
) -> None:
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    sign_in(config, browser)
    server.clear_requests()
    server.fail_next(error=error)

    result = refresh_saved(config)

    assert not result.success
    assert result.error is not None
    assert f"token refresh rejected by the service ({error}" in result.error
    assert ADVICE[error].format(name=name) in result.error
    assert len(server.token_requests) == 1
    assert waits == []


# -- every service: granted scopes and secrets ----------------------------

GRANTED_SCOPES = {
    "zoom": ["meeting:read:meeting", "cloud_recording:read:list_user_recordings"],
    "google": [
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/documents.readonly",
    ],
    "microsoft": [
        "https://graph.microsoft.com/OnlineMeetings.Read",
        "https://graph.microsoft.com/Files.Read",
    ],
}


def test_status_shows_granted_scopes(
    service_server: tuple[str, ProviderServer], browser: LoopbackBrowser
) -> None:
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    sign_in(config, browser)
    expected = GRANTED_SCOPES[name]
    assert saved(config)["scope"] == " ".join(expected)

    runner = CliRunner()
    text = runner.invoke(cli, ["auth", "status", name])
    document = runner.invoke(cli, ["auth", "status", name, "--json"])

    assert text.exit_code == 0, text.output
    assert f"  granted scopes: {' '.join(expected)}\n" in text.stdout
    assert "  refreshable: yes\n" in text.stdout
    assert document.exit_code == 0, document.output
    (entry,) = json.loads(document.stdout)["services"]
    assert entry["token"]["granted_scopes"] == expected
    assert entry["token"]["method"] == "oauth_pkce"


def test_debug_log_has_no_secret(
    service_server: tuple[str, ProviderServer],
    browser: LoopbackBrowser,
    caplog: pytest.LogCaptureFixture,
    waits: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="video_processor")
    name, server = service_server
    config = CONFIG_BUILDERS[name](server)
    first = sign_in(config, browser)
    second = refresh_saved(config)
    assert second.success, second.error
    server.fail_next(error="invalid_grant")
    failed = refresh_saved(config)
    assert not failed.success
    server.fail_next(503, times=4)
    unavailable = refresh_saved(config)
    assert not unavailable.success

    exchange = server.token_requests[0].form_params
    secrets = [
        server.client_secret,
        first.access_token,
        first.refresh_token,
        second.access_token,
        second.refresh_token,
        exchange.get("code"),
        exchange.get("code_verifier"),
    ]
    captured = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("video_processor")
    )
    assert "Refreshing" in captured
    assert_no_secret(captured, secrets)
    assert_no_secret(failed.error or "", secrets)
    assert_no_secret(unavailable.error or "", secrets)


# -- config.toml ---------------------------------------------------------


def test_cli_sign_in_from_config_table(
    google_server: GoogleServer, browser_env, planopticon_home: Path
) -> None:
    write_service_table(
        planopticon_home,
        "google",
        {
            "oauth_authorize_url": google_server.authorize_url,
            "oauth_token_url": google_server.token_url,
            "revocation_url": google_server.revoke_url,
            "client_id": google_server.client_id,
            "client_secret": google_server.client_secret,
        },
    )

    result = CliRunner().invoke(cli, ["auth", "google"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "Google authentication successful (oauth_pkce).\n"
    sent = query_of(browser_env.last_run["url"])
    assert sent["access_type"] == "offline"
    (exchange,) = google_server.token_requests
    assert exchange.form_params["client_secret"] == google_server.client_secret
    token = json.loads((planopticon_home / "google_token.json").read_text())
    assert token["refresh_token"]


def test_outage_keeps_saved_sign_in(zoom_server: ZoomServer, monkeypatch) -> None:
    monkeypatch.setattr(_clock, "sleep", lambda seconds: None)
    config = zoom_config(zoom_server)
    TokenStore(config.resolved_token_path).save(
        StoredToken(
            access_token="zoom-old-access",
            refresh_token="zoom-still-good-refresh",
            expires_at=1.0,
            client_id=zoom_server.client_id,
        )
    )
    zoom_server.fail_next(503, times=4)
    stderr = io.StringIO()
    console = Console(stdin=io.StringIO(), stderr=stderr, open_browser=None)
    result = OAuthManager(config, interactive=True, console=console).authenticate()
    assert not result.success
    assert "token refresh failed (http_503" in result.error
    assert "try again later" in result.error
    assert "interactive sign-in: skipped to keep the saved sign-in" in result.error
    assert stderr.getvalue() == ""
    assert TokenStore(config.resolved_token_path).load().refresh_token == (
        "zoom-still-good-refresh"
    )


def test_google_device_denial_is_reported(
    google_server: GoogleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    google_server.client_type = "tv"
    fast_polling(monkeypatch, google_server)
    config = google_config(google_server, scopes=GOOGLE_DEVICE_SCOPES)
    result, _, _ = device_sign_in(config, google_server, deny=True)
    assert not result.success
    assert "the sign-in was denied on the verification page" in result.error


def test_microsoft_device_denial_is_reported(
    microsoft_server: MicrosoftServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_polling(monkeypatch, microsoft_server)
    config = microsoft_config(microsoft_server)
    result, _, _ = device_sign_in(config, microsoft_server, deny=True)
    assert not result.success
    assert "the sign-in was denied on the verification page" in result.error
