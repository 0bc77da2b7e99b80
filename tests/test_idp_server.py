"""Tests of the test authorization server (tests/idp) and the fake browser.

They talk to the server with httpx directly, not through the product code, so a
failure here points at the test infrastructure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from support.idp import (
    DEVICE_CODE_GRANT,
    PRIVATE_USE_REDIRECT_URI,
    IdentityProvider,
    IdentityProviderError,
    basic_authorization,
    default_config,
)
from support.idp_fixtures import FAKE_BROWSER_SCRIPT, BrowserEnv

TIMEOUT = 10.0
ServerFactory = Callable[..., IdentityProvider]
LISTENER_BODY = "signed in, you can close this window"


@dataclass
class Listener:
    """Loopback HTTP server that records GET requests.

    With ``redirect_to_query`` set, it responds like a minimal authorization server:
    302 to the request's ``redirect_uri`` with a code and the request's state.
    """

    status: int = 200
    body: str = LISTENER_BODY
    redirect_to_query: bool = False
    paths: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last_query(self) -> dict[str, list[str]]:
        assert self.paths, "the listener received no request"
        return parse_qs(urlsplit(self.paths[-1]).query)


@contextmanager
def run_listener(listener: Listener) -> Iterator[Listener]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            listener.paths.append(self.path)
            if listener.redirect_to_query:
                query = parse_qs(urlsplit(self.path).query)
                target = (
                    query["redirect_uri"][0]
                    + "?"
                    + urlencode({"code": "generic-code", "state": query["state"][0]})
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return
            payload = listener.body.encode()
            self.send_response(listener.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    listener.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)


def get(url: str, **kwargs: Any) -> httpx.Response:
    # trust_env=False keeps proxy variables from routing loopback requests elsewhere.
    return httpx.get(url, timeout=TIMEOUT, trust_env=False, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=TIMEOUT, trust_env=False, **kwargs)


def make_pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorize_url(
    idp: IdentityProvider,
    client_id: str,
    redirect_uri: str,
    state: str,
    challenge: str,
    *,
    offline: bool = True,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid read",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if offline:
        # offline_access with prompt=consent is what earns a refresh token.
        params["scope"] = "openid offline_access read"
        params["prompt"] = "consent"
    return f"{idp.authorization_endpoint}?{urlencode(params)}"


@dataclass
class SignIn:
    code: str
    state: str
    redirect_uri: str
    verifier: str


def sign_in(
    idp: IdentityProvider,
    browser_env: BrowserEnv,
    client_id: str,
    *,
    offline: bool = True,
) -> SignIn:
    """Run the code flow through webbrowser.open and return the code received."""
    verifier, challenge = make_pkce()
    state = secrets.token_urlsafe(16)
    with run_listener(Listener()) as listener:
        redirect_uri = f"{listener.base_url}/callback"
        url = authorize_url(
            idp, client_id, redirect_uri, state, challenge, offline=offline
        )
        assert webbrowser.open(url)
    assert browser_env.error is None
    assert browser_env.listener_status == 200
    query = listener.last_query
    return SignIn(query["code"][0], query["state"][0], redirect_uri, verifier)


def code_exchange_form(signed_in: SignIn) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": signed_in.code,
        "redirect_uri": signed_in.redirect_uri,
        "code_verifier": signed_in.verifier,
    }


def secret_of(idp: IdentityProvider, client_id: str) -> str:
    secret = idp.clients[client_id].client_secret
    assert secret is not None
    return secret


def post_basic(
    idp: IdentityProvider, url: str, client_id: str, form: dict[str, str]
) -> httpx.Response:
    headers = {
        "Authorization": basic_authorization(client_id, secret_of(idp, client_id))
    }
    return post(url, data=form, headers=headers)


def post_secret_in_body(
    idp: IdentityProvider, url: str, client_id: str, form: dict[str, str]
) -> httpx.Response:
    credentials = {"client_id": client_id, "client_secret": secret_of(idp, client_id)}
    return post(url, data={**form, **credentials})


def post_public(url: str, client_id: str, form: dict[str, str]) -> httpx.Response:
    return post(url, data={**form, "client_id": client_id})


def poll_device(
    idp: IdentityProvider, client_id: str, device_code: str
) -> httpx.Response:
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
    return idp.post_as_client(idp.token_endpoint, client_id, form)


def start_device_flow(idp: IdentityProvider, client_id: str) -> dict[str, Any]:
    response = idp.post_as_client(
        idp.device_authorization_endpoint,
        client_id,
        {"scope": "openid offline_access read"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("FAKE_BROWSER_")
    }


def run_fake_browser(url: str, **env: str) -> dict[str, Any]:
    """Run fake_browser.py without a log file and return the result it prints."""
    completed = subprocess.run(
        [sys.executable, str(FAKE_BROWSER_SCRIPT), url],
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean_environment(), **env},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


# Server start-up and discovery


def test_discovery_lists_endpoints(idp: IdentityProvider) -> None:
    response = get(f"{idp.issuer}/.well-known/openid-configuration")

    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == f"http://127.0.0.1:{idp.port}"
    assert metadata["token_endpoint"] == f"{idp.issuer}/token"
    assert metadata["device_authorization_endpoint"] == f"{idp.issuer}/device/auth"
    assert metadata["revocation_endpoint"] == f"{idp.issuer}/token/revocation"
    assert metadata["introspection_endpoint"] == f"{idp.issuer}/token/introspection"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"read", "write", "offline_access"} <= set(metadata["scopes_supported"])


def test_idp_clients_have_random_secrets(idp: IdentityProvider) -> None:
    clients = idp.clients

    assert set(clients) == {
        "confidential-app",
        "public-app",
        "post-app",
        "device-app",
        "service-app",
    }
    assert clients["public-app"].client_secret is None
    assert clients["post-app"].token_endpoint_auth_method == "client_secret_post"
    secrets_in_use = [c.client_secret for c in clients.values() if c.client_secret]
    assert len(secrets_in_use) == 4
    assert len(set(secrets_in_use)) == 4
    assert all(len(secret) >= 40 for secret in secrets_in_use)


def test_authorize_without_pkce_rejected(idp: IdentityProvider) -> None:
    params = {
        "response_type": "code",
        "client_id": "public-app",
        "redirect_uri": "http://127.0.0.1:5000/callback",
        "scope": "openid",
        "state": "abc",
    }
    response = get(idp.authorization_endpoint, params=params)

    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "requires PKCE" in query["error_description"][0]


# Authorization code flow through the fake browser


def test_browser_code_flow_reaches_listener(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    _verifier, challenge = make_pkce()
    with run_listener(Listener()) as listener:
        redirect_uri = f"{listener.base_url}/callback"
        url = authorize_url(
            idp, "confidential-app", redirect_uri, "state-123", challenge
        )
        opened = webbrowser.open(url)

    assert opened is True
    assert browser_env.error is None
    assert len(listener.paths) == 1
    query = listener.last_query
    assert query["state"] == ["state-123"]
    assert query["iss"] == [idp.issuer]
    assert len(query["code"][0]) > 20
    assert browser_env.final_url == f"{listener.base_url}{listener.paths[0]}"
    assert browser_env.listener_status == 200
    assert browser_env.listener_body == LISTENER_BODY


def test_browser_deny_returns_access_denied(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    browser_env.set_action("deny")
    _verifier, challenge = make_pkce()
    with run_listener(Listener()) as listener:
        redirect_uri = f"{listener.base_url}/callback"
        url = authorize_url(idp, "public-app", redirect_uri, "state-deny", challenge)
        webbrowser.open(url)

    assert browser_env.error is None
    query = listener.last_query
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-deny"]
    assert "code" not in query


def test_browser_private_use_redirect_recorded(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    _verifier, challenge = make_pkce()
    url = authorize_url(
        idp, "confidential-app", PRIVATE_USE_REDIRECT_URI, "state-paste", challenge
    )

    webbrowser.open(url)

    assert browser_env.error is None
    final_url = browser_env.final_url
    assert final_url is not None
    assert final_url.startswith(PRIVATE_USE_REDIRECT_URI + "?")
    query = parse_qs(urlsplit(final_url).query)
    assert query["state"] == ["state-paste"]
    assert "code" in query
    assert browser_env.listener_status is None


def test_browser_error_page_recorded(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    _verifier, challenge = make_pkce()
    url = authorize_url(
        idp, "confidential-app", "http://127.0.0.1/other", "state-x", challenge
    )

    webbrowser.open(url)

    assert browser_env.error is None
    assert browser_env.page_status == 400
    assert "redirect_uri did not match" in (browser_env.page_body or "")
    assert browser_env.listener_status is None


def test_browser_ignore_sends_nothing(browser_env: BrowserEnv) -> None:
    browser_env.set_action("ignore")
    with run_listener(Listener()) as listener:
        webbrowser.open(f"{listener.base_url}/authorize")

    assert listener.paths == []
    assert browser_env.final_url == f"{listener.base_url}/authorize"
    assert browser_env.last_run["history"] == []


def test_fake_browser_generic_server_redirect() -> None:
    with (
        run_listener(Listener(redirect_to_query=True)) as server,
        run_listener(Listener(status=404, body="no such page")) as listener,
    ):
        redirect_uri = f"{listener.base_url}/callback"
        query = urlencode({"redirect_uri": redirect_uri, "state": "s1"})
        result = run_fake_browser(f"{server.base_url}/authorize?{query}")

    assert result["error"] is None
    assert result["final_url"] == f"{redirect_uri}?code=generic-code&state=s1"
    assert result["listener_status"] == 404
    assert result["listener_body"] == "no such page"
    assert listener.paths == ["/callback?code=generic-code&state=s1"]


def test_fake_browser_plain_page_recorded() -> None:
    with run_listener(Listener(body="<p>consent screen</p>")) as server:
        result = run_fake_browser(f"{server.base_url}/authorize")

    assert result["error"] is None
    assert result["page_status"] == 200
    assert result["page_body"] == "<p>consent screen</p>"
    assert result["listener_status"] is None


def test_fake_browser_rejects_other_hosts() -> None:
    # 0.0.0.0 reaches this machine on Linux, but it is not a loopback name the
    # browser accepts, so the request must be rejected before it is sent.
    result = run_fake_browser("http://0.0.0.0:9/authorize")

    assert result["error"] is not None
    assert "rejected request to http://0.0.0.0:9/authorize" in result["error"]
    assert result["history"] == []


def test_fake_browser_rejects_unknown_action() -> None:
    result = run_fake_browser(
        "http://127.0.0.1:9/authorize", FAKE_BROWSER_ACTION="approve"
    )

    assert result["error"] is not None
    assert "invalid FAKE_BROWSER_ACTION 'approve'" in result["error"]


# Code exchange and client authentication


def test_code_exchange_basic_succeeds(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "confidential-app")

    response = post_basic(
        idp, idp.token_endpoint, "confidential-app", code_exchange_form(signed_in)
    )

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 120
    assert tokens["refresh_token"]
    introspection = idp.introspect(tokens["access_token"])
    assert introspection["active"] is True
    assert introspection["client_id"] == "confidential-app"
    assert introspection["sub"] == "test-user"


def test_code_exchange_wrong_method_rejected(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "confidential-app")
    form = code_exchange_form(signed_in)

    rejected = post_secret_in_body(idp, idp.token_endpoint, "confidential-app", form)
    accepted = post_basic(idp, idp.token_endpoint, "confidential-app", form)

    assert rejected.status_code == 401
    assert rejected.json() == {
        "error": "invalid_client",
        "error_description": "client authentication method mismatch: "
        "registered client_secret_basic, used client_secret_post",
    }
    # The rejected request left the code unused.
    assert accepted.status_code == 200, accepted.text


def test_code_exchange_public_no_secret(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "public-app")

    response = post_public(
        idp.token_endpoint, "public-app", code_exchange_form(signed_in)
    )

    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"]


def test_code_exchange_wrong_verifier_rejected(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "public-app")
    form = {**code_exchange_form(signed_in), "code_verifier": make_pkce()[0]}

    response = post_public(idp.token_endpoint, "public-app", form)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("client_id", "used_method", "expected_status"),
    [
        ("confidential-app", "client_secret_basic", 200),
        ("confidential-app", "client_secret_post", 401),
        ("confidential-app", "none", 401),
        ("post-app", "client_secret_post", 200),
        ("post-app", "client_secret_basic", 401),
        ("public-app", "none", 200),
        ("public-app", "client_secret_basic", 401),
        ("public-app", "client_secret_post", 401),
    ],
)
def test_client_auth_method_enforced(
    idp: IdentityProvider, client_id: str, used_method: str, expected_status: int
) -> None:
    form = {"token": "not-a-real-token"}
    url = idp.introspection_endpoint
    # The public client has no secret, so the request sends a made-up one.
    secret = idp.clients[client_id].client_secret or "made-up-secret"
    if used_method == "client_secret_basic":
        headers = {"Authorization": basic_authorization(client_id, secret)}
        response = post(url, data=form, headers=headers)
    elif used_method == "client_secret_post":
        form = {**form, "client_id": client_id, "client_secret": secret}
        response = post(url, data=form)
    else:
        response = post_public(url, client_id, form)

    assert response.status_code == expected_status, response.text
    if expected_status == 401:
        registered = idp.clients[client_id].token_endpoint_auth_method
        assert response.json()["error_description"] == (
            "client authentication method mismatch: "
            f"registered {registered}, used {used_method}"
        )
    else:
        assert response.json() == {"active": False}


def test_basic_mismatch_sets_www_authenticate(idp: IdentityProvider) -> None:
    secret = secret_of(idp, "post-app")
    headers = {"Authorization": basic_authorization("post-app", secret)}
    response = post(
        idp.introspection_endpoint, data={"token": "unknown"}, headers=headers
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"


def test_wrong_secret_rejected(idp: IdentityProvider) -> None:
    headers = {"Authorization": basic_authorization("service-app", "wrong-secret")}
    response = post(
        idp.token_endpoint,
        data={"grant_type": "client_credentials"},
        headers=headers,
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# Refresh tokens, client credentials, revocation


def test_refresh_rotates_and_reuse_fails(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "confidential-app")
    tokens = idp.post_as_client(
        idp.token_endpoint, "confidential-app", code_exchange_form(signed_in)
    ).json()
    old_refresh_token = tokens["refresh_token"]
    refresh_form = {"grant_type": "refresh_token", "refresh_token": old_refresh_token}

    refreshed = post_basic(idp, idp.token_endpoint, "confidential-app", refresh_form)
    reused = post_basic(idp, idp.token_endpoint, "confidential-app", refresh_form)

    assert refreshed.status_code == 200, refreshed.text
    new_tokens = refreshed.json()
    assert new_tokens["refresh_token"] != old_refresh_token
    assert new_tokens["access_token"] != tokens["access_token"]
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Reuse of a rotated-out refresh token revokes the whole grant.
    assert idp.introspect(new_tokens["refresh_token"])["active"] is False


def test_refresh_without_rotation_keeps_token(
    idp_factory: ServerFactory, browser_env: BrowserEnv
) -> None:
    server = idp_factory(rotateRefreshToken=False)
    signed_in = sign_in(server, browser_env, "confidential-app")
    tokens = server.post_as_client(
        server.token_endpoint, "confidential-app", code_exchange_form(signed_in)
    ).json()
    refresh_form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }

    first = server.post_as_client(
        server.token_endpoint, "confidential-app", refresh_form
    )
    second = server.post_as_client(
        server.token_endpoint, "confidential-app", refresh_form
    )

    assert first.status_code == 200, first.text
    assert first.json()["refresh_token"] == tokens["refresh_token"]
    assert second.status_code == 200, second.text


def test_client_credentials_service_app(idp: IdentityProvider) -> None:
    response = post_basic(
        idp,
        idp.token_endpoint,
        "service-app",
        {"grant_type": "client_credentials", "scope": "read"},
    )

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["scope"] == "read"
    assert tokens["expires_in"] == 120
    assert "refresh_token" not in tokens
    introspection = idp.introspect(tokens["access_token"])
    assert introspection["active"] is True
    assert introspection["client_id"] == "service-app"


def test_access_token_ttl_expires(idp_factory: ServerFactory) -> None:
    server = idp_factory(accessTokenTtl=1)
    response = server.post_as_client(
        server.token_endpoint, "service-app", {"grant_type": "client_credentials"}
    )
    access_token = response.json()["access_token"]

    assert response.json()["expires_in"] == 1
    assert server.introspect(access_token)["active"] is True
    time.sleep(2.1)
    assert server.introspect(access_token)["active"] is False


def test_revocation_makes_tokens_inactive(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "post-app")
    tokens = post_secret_in_body(
        idp, idp.token_endpoint, "post-app", code_exchange_form(signed_in)
    ).json()
    assert idp.introspect(tokens["refresh_token"])["active"] is True

    response = post_secret_in_body(
        idp,
        idp.revocation_endpoint,
        "post-app",
        {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
    )

    assert response.status_code == 200
    assert response.content == b""
    assert idp.introspect(tokens["refresh_token"])["active"] is False
    assert idp.introspect(tokens["access_token"])["active"] is False


# Device authorization grant


def test_device_authorization_has_interval(idp: IdentityProvider) -> None:
    device = start_device_flow(idp, "device-app")

    assert device["interval"] == 1
    assert device["verification_uri"] == f"{idp.issuer}/device"
    assert device["user_code"] in device["verification_uri_complete"]
    assert device["expires_in"] == 600


def test_device_interval_configurable(idp_factory: ServerFactory) -> None:
    server = idp_factory(deviceInterval=4)

    device = start_device_flow(server, "public-app")

    assert device["interval"] == 4


def test_device_poll_pending(idp: IdentityProvider) -> None:
    device = start_device_flow(idp, "device-app")

    first = poll_device(idp, "device-app", device["device_code"])
    # Without enforceSlowDown a fast second poll gets the usual response.
    second = poll_device(idp, "device-app", device["device_code"])

    assert first.status_code == 400
    assert first.json()["error"] == "authorization_pending"
    assert second.json()["error"] == "authorization_pending"


def test_device_fast_poll_slow_down(idp_factory: ServerFactory) -> None:
    server = idp_factory(enforceSlowDown=True, deviceInterval=1)
    device_code = start_device_flow(server, "device-app")["device_code"]

    first = poll_device(server, "device-app", device_code)
    time.sleep(1.1)
    on_time = poll_device(server, "device-app", device_code)
    too_fast = poll_device(server, "device-app", device_code)
    time.sleep(1.1)
    # The interval is now 6 s, so a poll after 1.1 s is still too fast.
    still_too_fast = poll_device(server, "device-app", device_code)

    assert first.json()["error"] == "authorization_pending"
    assert on_time.json()["error"] == "authorization_pending"
    assert too_fast.status_code == 400
    assert too_fast.json()["error"] == "slow_down"
    assert "6 seconds" in too_fast.json()["error_description"]
    assert still_too_fast.json()["error"] == "slow_down"
    assert "11 seconds" in still_too_fast.json()["error_description"]


def test_device_approve_then_tokens(idp: IdentityProvider) -> None:
    device = start_device_flow(idp, "device-app")

    idp.approve_device(device["user_code"], login="device-user")
    response = poll_device(idp, "device-app", device["device_code"])

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["refresh_token"]
    introspection = idp.introspect(tokens["access_token"])
    assert introspection["active"] is True
    assert introspection["client_id"] == "device-app"
    assert introspection["sub"] == "device-user"


def test_device_public_client_tokens(idp: IdentityProvider) -> None:
    device = start_device_flow(idp, "public-app")

    idp.approve_device(device["user_code"])
    response = poll_device(idp, "public-app", device["device_code"])

    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"]


def test_device_deny_access_denied(idp: IdentityProvider) -> None:
    device = start_device_flow(idp, "public-app")

    idp.approve_device(device["user_code"], deny=True)
    response = poll_device(idp, "public-app", device["device_code"])

    assert response.status_code == 400
    assert response.json()["error"] == "access_denied"


def test_device_unknown_user_code_raises(idp: IdentityProvider) -> None:
    with pytest.raises(IdentityProviderError, match="XXXX-XXXX"):
        idp.approve_device("XXXX-XXXX")


# Request counters


def test_stats_count_requests(idp: IdentityProvider) -> None:
    idp.reset_stats()
    credentials_form = {"grant_type": "client_credentials"}
    refresh_form = {"grant_type": "refresh_token", "refresh_token": "unknown"}

    post_basic(idp, idp.token_endpoint, "service-app", credentials_form)
    post_basic(idp, idp.token_endpoint, "service-app", credentials_form)
    post_basic(idp, idp.token_endpoint, "confidential-app", refresh_form)
    # Requests rejected by the authentication check are counted too.
    post_secret_in_body(idp, idp.token_endpoint, "confidential-app", refresh_form)
    post_public(idp.revocation_endpoint, "public-app", {"token": "unknown"})

    stats = idp.stats()

    assert stats["token_requests"] == {"client_credentials": 2, "refresh_token": 2}
    assert stats["endpoint_requests"] == {"token": 4, "revocation": 1}


def test_stats_reset_zeroes_counts(idp: IdentityProvider) -> None:
    post_basic(
        idp, idp.token_endpoint, "service-app", {"grant_type": "client_credentials"}
    )
    assert idp.stats()["token_requests"] != {}

    idp.reset_stats()

    assert idp.stats() == {"token_requests": {}, "endpoint_requests": {}}


# Process lifetime


def test_server_exits_on_stdin_close(idp_factory: ServerFactory) -> None:
    server = idp_factory()
    process = server.process

    assert process.stdin is not None
    process.stdin.close()

    assert process.wait(timeout=5) == 0
    assert "stopping (stdin closed)" in server.stderr_output()


def test_server_exits_on_sigterm(idp_factory: ServerFactory) -> None:
    server = idp_factory()
    process = server.process

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=5) == 0
    assert "stopping (SIGTERM)" in server.stderr_output()
    with pytest.raises(httpx.ConnectError):
        get(f"{server.issuer}/.well-known/openid-configuration")


def test_unknown_setting_rejected(idp_factory: ServerFactory) -> None:
    with pytest.raises(TypeError, match="accessTokenTTL"):
        idp_factory(accessTokenTTL=5)


def test_invalid_client_metadata_fails_start() -> None:
    config = default_config()
    # oidc-provider accepts private-use schemes only in reverse domain name form.
    config["clients"][0]["redirect_uris"] = ["myapp:/callback"]
    server = IdentityProvider()

    with pytest.raises(IdentityProviderError, match="reverse domain name"):
        server.start(config)
    with pytest.raises(IdentityProviderError, match="not running"):
        server.process  # noqa: B018


def test_no_refresh_token_without_offline_access(
    idp: IdentityProvider, browser_env: BrowserEnv
) -> None:
    signed_in = sign_in(idp, browser_env, "public-app", offline=False)
    response = post_public(
        idp.token_endpoint, "public-app", code_exchange_form(signed_in)
    )
    tokens = response.json()
    assert "access_token" in tokens
    assert "refresh_token" not in tokens
