"""Tests of the fake OAuth provider servers, driven with httpx.

Each test checks one documented behaviour of a service: that the fake accepts
what the service accepts and rejects what it rejects, in the service's own
error shape. Expiry and polling intervals use ``advance_time`` instead of
sleeping.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.providers import (
    DropboxServer,
    GitHubServer,
    GoogleServer,
    MicrosoftServer,
    NotionServer,
    ZoomServer,
)
from support.providers.base import (
    DEVICE_CODE_GRANT_TYPE,
    ProviderServer,
    RecordedRequest,
    Response,
    pkce_s256_challenge,
)
from support.providers.github import redirect_uri_matches

REDIRECT_URI = "http://127.0.0.1:8765/callback"
GRAPH_READ = "https://graph.microsoft.com/User.Read"
DRIVE_FILE = "https://www.googleapis.com/auth/drive.file"

# Each new httpx.Client would build its own SSL context, which takes tens of
# milliseconds, so the clients share one. The fakes serve plain HTTP and never use it.
TLS_CONTEXT = ssl.create_default_context()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(
        timeout=5.0, follow_redirects=False, verify=TLS_CONTEXT
    ) as client:
        yield client


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def new_pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_s256_challenge(verifier)


def authorize(
    http: httpx.Client, server: ProviderServer, url: str | None = None, **params: str
) -> httpx.Response:
    return http.get(url or server.authorize_url, params=params)


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return query_of(response.headers["location"])["code"]


def basic_header(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {token}"


# ---------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------


def test_request_log_records_form_request(zoom_server, http):
    http.post(
        zoom_server.token_url,
        params={"grant_type": "refresh_token"},
        data={"refresh_token": "unknown"},
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    request = zoom_server.requests[-1]
    assert request.method == "POST"
    assert request.path == "/oauth/token"
    assert request.endpoint == "token"
    assert request.query == {"grant_type": ["refresh_token"]}
    assert request.headers["authorization"].startswith("Basic ")
    assert request.basic_auth == (zoom_server.client_id, zoom_server.client_secret)
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.body == b"refresh_token=unknown"
    assert request.form == {"refresh_token": ["unknown"]}
    assert request.json is None


def test_request_log_records_json_body(notion_server, http):
    http.post(
        notion_server.token_url,
        json={"grant_type": "authorization_code", "code": "x"},
        auth=(notion_server.client_id, notion_server.client_secret),
    )

    request = notion_server.token_requests[-1]
    assert request.json == {"grant_type": "authorization_code", "code": "x"}
    assert request.form is None
    assert request.content_type == "application/json"


def test_request_log_filters_by_endpoint(zoom_server, http):
    http.get(zoom_server.authorize_url)
    http.post(zoom_server.token_url)
    http.post(zoom_server.revoke_url)

    assert [r.endpoint for r in zoom_server.requests] == [
        "authorize",
        "token",
        "revoke",
    ]
    assert len(zoom_server.token_requests) == 1
    assert len(zoom_server.requests_to("revoke")) == 1


def test_client_secret_unique_per_server():
    first = ZoomServer()
    second = ZoomServer()

    assert first.client_secret != second.client_secret
    assert first.client_id != second.client_id
    assert len(first.client_secret) >= 43


def test_fixture_servers_bind_loopback(request):
    names = ["zoom", "google", "microsoft", "dropbox", "github", "notion"]
    for name in names:
        server = request.getfixturevalue(f"{name}_server")
        parts = urllib.parse.urlsplit(server.base_url)
        assert parts.hostname == "127.0.0.1", name
        assert parts.port, name


def test_fail_next_status_then_normal(google_server, http):
    google_server.fail_next(503)

    first = http.post(google_server.token_url, data={"grant_type": "refresh_token"})
    second = http.post(google_server.token_url, data={"grant_type": "refresh_token"})

    assert first.status_code == 503
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_request"


def test_fail_next_times_queues_failures(google_server, http):
    google_server.fail_next(502, times=2)

    statuses = [http.post(google_server.token_url).status_code for _ in range(3)]

    assert statuses == [502, 502, 400]
    assert google_server.pending_failures() == 0


def test_fail_next_429_sets_retry_after(google_server, http):
    google_server.fail_next(429, retry_after=1)

    response = http.post(google_server.token_url)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


def test_fail_next_error_uses_service_shape(zoom_server, http):
    zoom_server.fail_next(error="temporarily_unavailable", status=503)

    response = http.post(zoom_server.token_url)

    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "reason" in response.json()


def test_fail_next_raw_body(google_server, http):
    google_server.fail_next(500, body="<html>oops</html>", content_type="text/html")

    response = http.post(google_server.token_url)

    assert response.status_code == 500
    assert response.text == "<html>oops</html>"
    assert response.headers["content-type"] == "text/html"


def test_fail_next_targets_one_endpoint(google_server, http):
    google_server.fail_next(503, endpoint="revoke")

    token_response = http.post(google_server.token_url)
    revoke_response = http.post(google_server.revoke_url, data={"token": "x"})

    assert token_response.status_code == 400
    assert revoke_response.status_code == 503


def test_fail_next_drop_connection(google_server, http):
    google_server.fail_next(drop_connection=True)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(google_server.token_url)
    after = http.post(google_server.token_url)

    assert after.status_code == 400
    assert len(google_server.token_requests) == 2


def test_fail_next_needs_a_failure(google_server):
    with pytest.raises(ValueError, match="fail_next needs"):
        google_server.fail_next()


def test_delay_next_slows_response(google_server, http):
    google_server.delay_next(0.3)

    started = time.monotonic()
    response = http.post(google_server.token_url)
    elapsed = time.monotonic() - started

    assert response.status_code == 400
    assert elapsed >= 0.3


def test_unknown_path_returns_404(google_server, http):
    response = http.get(google_server.url("/nowhere"))

    assert response.status_code == 404
    assert google_server.requests[-1].endpoint is None


def test_wrong_method_returns_405(google_server, http):
    response = http.get(google_server.token_url)

    assert response.status_code == 405


def test_revoke_all_kills_tokens(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    zoom_server.revoke_all()

    assert not zoom_server.is_access_token_live(tokens["access_token"])
    assert not zoom_server.is_refresh_token_live(tokens["refresh_token"])


def test_expire_access_tokens_keeps_refresh(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    zoom_server.expire_access_tokens()

    assert not zoom_server.is_access_token_live(tokens["access_token"])
    assert zoom_server.is_refresh_token_live(tokens["refresh_token"])


def test_advance_time_expires_access_token(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    zoom_server.advance_time(3598)
    live_before = zoom_server.is_access_token_live(tokens["access_token"])
    zoom_server.advance_time(2)

    assert live_before
    assert not zoom_server.is_access_token_live(tokens["access_token"])


def test_token_helpers_reject_unknown_values(zoom_server):
    assert not zoom_server.is_access_token_live("nope")
    assert not zoom_server.is_refresh_token_live("nope")


def test_stop_refuses_new_connections(http):
    server = GoogleServer().start()
    url = server.token_url
    server.stop()

    with pytest.raises(httpx.ConnectError):
        http.post(url)


def test_stop_closes_kept_alive_connection(http):
    server = GoogleServer().start()
    assert http.post(server.token_url).status_code == 400
    server.stop()

    # A connection left open would still reach the stopped server's handler.
    with pytest.raises(httpx.TransportError):
        http.post(server.token_url)


def test_handler_bug_returns_500(http):
    server = GoogleServer()

    def broken(request: RecordedRequest) -> Response:
        raise RuntimeError("bug in the fake")

    server.add_route("GET", "/broken", "broken", broken)
    with server:
        response = http.get(server.url("/broken"))

    assert response.status_code == 500
    assert response.json()["error"] == "fake_server_bug"
    assert len(server.handler_errors) == 1


def test_base_url_before_start_raises():
    with pytest.raises(RuntimeError, match="has not been started"):
        _ = GoogleServer().base_url


def test_deny_next_authorization_redirects_error(zoom_server, http):
    zoom_server.deny_next_authorization()

    denied = authorize(
        http,
        zoom_server,
        client_id=zoom_server.client_id,
        redirect_uri=REDIRECT_URI,
        response_type="code",
        state="s1",
    )
    approved = authorize(
        http,
        zoom_server,
        client_id=zoom_server.client_id,
        redirect_uri=REDIRECT_URI,
        response_type="code",
        state="s2",
    )

    assert query_of(denied.headers["location"]) == {
        "error": "access_denied",
        "state": "s1",
    }
    assert "code" in query_of(approved.headers["location"])


# ---------------------------------------------------------------------------
# Zoom
# ---------------------------------------------------------------------------


def zoom_code(server: ZoomServer, http: httpx.Client, **extra: str) -> str:
    response = authorize(
        http,
        server,
        client_id=server.client_id,
        redirect_uri=REDIRECT_URI,
        response_type="code",
        **extra,
    )
    return code_from(response)


def zoom_exchange(
    server: ZoomServer, http: httpx.Client, code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    data.update(extra)
    return http.post(
        server.token_url, data=data, auth=(server.client_id, server.client_secret)
    )


def zoom_user_tokens(server: ZoomServer, http: httpx.Client) -> dict[str, Any]:
    response = zoom_exchange(server, http, zoom_code(server, http))
    assert response.status_code == 200, response.text
    return response.json()


def zoom_refresh(server: ZoomServer, http: httpx.Client, token: str) -> httpx.Response:
    return http.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(server.client_id, server.client_secret),
    )


def test_zoom_authorize_redirects_code_and_state(zoom_server, http):
    response = authorize(
        http,
        zoom_server,
        client_id=zoom_server.client_id,
        redirect_uri=REDIRECT_URI,
        response_type="code",
        state="xyz",
    )

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    assert query_of(location)["state"] == "xyz"
    assert query_of(location)["code"] == zoom_server.last_code.value


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9999/callback",
        "http://127.0.0.1:8765/other",
        "urn:ietf:wg:oauth:2.0:oob",
    ],
)
def test_zoom_authorize_unlisted_redirect_rejected(zoom_server, http, redirect_uri):
    response = authorize(
        http,
        zoom_server,
        client_id=zoom_server.client_id,
        redirect_uri=redirect_uri,
        response_type="code",
    )

    assert response.status_code == 400
    assert "Redirect URI mismatch" in response.text


def test_zoom_code_exchange_issues_one_hour_pair(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3599
    assert zoom_server.is_access_token_live(tokens["access_token"])
    assert zoom_server.is_refresh_token_live(tokens["refresh_token"])


def test_zoom_token_body_credentials_rejected(zoom_server, http):
    code = zoom_code(zoom_server, http)

    response = http.post(
        zoom_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": zoom_server.client_id,
            "client_secret": zoom_server.client_secret,
        },
    )

    assert response.status_code == 401
    assert response.json() == {
        "reason": "Client ID or client secret is missing.",
        "error": "invalid_client",
    }


def test_zoom_token_wrong_secret_rejected(zoom_server, http):
    response = http.post(
        zoom_server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(zoom_server.client_id, "wrong"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_zoom_grant_params_in_query_accepted(zoom_server, http):
    code = zoom_code(zoom_server, http)

    response = http.post(
        zoom_server.token_url,
        params={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 200
    assert "access_token" in response.json()


def test_zoom_refresh_rotates_and_reuse_fails(zoom_server, http):
    old = zoom_user_tokens(zoom_server, http)["refresh_token"]

    first = zoom_refresh(zoom_server, http, old)
    reuse = zoom_refresh(zoom_server, http, old)

    assert first.status_code == 200
    new = first.json()["refresh_token"]
    assert new != old
    assert zoom_server.is_refresh_token_live(new)
    assert not zoom_server.is_refresh_token_live(old)
    assert reuse.status_code == 400
    assert reuse.json() == {"reason": "Invalid Token!", "error": "invalid_request"}


def test_zoom_refresh_token_in_query_rejected(zoom_server, http):
    refresh = zoom_user_tokens(zoom_server, http)["refresh_token"]

    response = http.post(
        zoom_server.token_url,
        params={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert zoom_server.is_refresh_token_live(refresh)


def test_zoom_pkce_omitted_method_means_plain(zoom_server, http):
    verifier, challenge = new_pkce_pair()
    code = zoom_code(zoom_server, http, code_challenge=challenge)

    response = zoom_exchange(zoom_server, http, code, code_verifier=verifier)

    assert zoom_server.codes[code].code_challenge_method == "plain"
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_zoom_pkce_s256_exchange_succeeds(zoom_server, http):
    verifier, challenge = new_pkce_pair()
    code = zoom_code(
        zoom_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = zoom_exchange(zoom_server, http, code, code_verifier=verifier)

    assert response.status_code == 200


def test_zoom_pkce_exchange_still_needs_secret(zoom_server, http):
    verifier, challenge = new_pkce_pair()
    code = zoom_code(
        zoom_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = http.post(
        zoom_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": zoom_server.client_id,
        },
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_zoom_exchange_redirect_mismatch_rejected(zoom_server, http):
    code = zoom_code(zoom_server, http)

    response = zoom_exchange(
        zoom_server, http, code, redirect_uri="http://127.0.0.1:1/x"
    )

    assert response.status_code == 400
    assert response.json()["reason"] == "Redirect URI mismatch."


def test_zoom_code_works_once(zoom_server, http):
    code = zoom_code(zoom_server, http)

    first = zoom_exchange(zoom_server, http, code)
    second = zoom_exchange(zoom_server, http, code)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["reason"] == f"Invalid authorization code {code}"


def test_zoom_new_sign_in_revokes_earlier_tokens(zoom_server, http):
    earlier = zoom_user_tokens(zoom_server, http)

    later = zoom_user_tokens(zoom_server, http)

    assert not zoom_server.is_access_token_live(earlier["access_token"])
    assert not zoom_server.is_refresh_token_live(earlier["refresh_token"])
    assert zoom_server.is_access_token_live(later["access_token"])


def zoom_s2s(server: ZoomServer, http: httpx.Client, account_id: str | None = None):
    return http.post(
        server.token_url,
        params={
            "grant_type": "account_credentials",
            "account_id": account_id or server.account_id,
        },
        auth=(server.client_id, server.client_secret),
    )


def test_zoom_s2s_token_has_no_refresh(zoom_server, http):
    response = zoom_s2s(zoom_server, http)

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 3599
    assert "refresh_token" not in body
    assert zoom_server.is_access_token_live(body["access_token"])
    assert zoom_server.s2s_request_count == 1


def test_zoom_s2s_new_token_invalidates_previous(zoom_server, http):
    first = zoom_s2s(zoom_server, http).json()["access_token"]
    second = zoom_s2s(zoom_server, http).json()["access_token"]

    assert not zoom_server.is_access_token_live(first)
    assert zoom_server.is_access_token_live(second)
    assert zoom_server.s2s_request_count == 2


def test_zoom_s2s_knob_keeps_previous(zoom_server, http):
    zoom_server.invalidate_previous_s2s = False

    first = zoom_s2s(zoom_server, http).json()["access_token"]
    second = zoom_s2s(zoom_server, http).json()["access_token"]

    assert zoom_server.is_access_token_live(first)
    assert zoom_server.is_access_token_live(second)


def test_zoom_s2s_unknown_account_rejected(zoom_server, http):
    response = zoom_s2s(zoom_server, http, account_id="someone-else")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert zoom_server.s2s_request_count == 1


def test_zoom_revoke_basic_form_kills_grant(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    response = http.post(
        zoom_server.revoke_url,
        data={"token": tokens["access_token"]},
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert zoom_server.revoked_tokens == [tokens["access_token"]]
    assert not zoom_server.is_access_token_live(tokens["access_token"])
    assert not zoom_server.is_refresh_token_live(tokens["refresh_token"])


def test_zoom_revoke_without_basic_rejected(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    response = http.post(zoom_server.revoke_url, data={"token": tokens["access_token"]})

    assert response.status_code == 401
    assert zoom_server.is_access_token_live(tokens["access_token"])


def test_zoom_revoke_token_in_query_rejected(zoom_server, http):
    tokens = zoom_user_tokens(zoom_server, http)

    response = http.post(
        zoom_server.revoke_url,
        params={"token": tokens["access_token"]},
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 400
    assert zoom_server.is_access_token_live(tokens["access_token"])


def test_zoom_revoke_empty_token_rejected(zoom_server, http):
    response = http.post(
        zoom_server.revoke_url,
        data={},
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 400
    assert response.json()["reason"] == "Token cannot be empty."


def zoom_device(server: ZoomServer, http: httpx.Client) -> dict[str, Any]:
    response = http.post(
        server.device_authorization_url,
        params={"client_id": server.client_id},
        auth=(server.client_id, server.client_secret),
    )
    assert response.status_code == 200, response.text
    return response.json()


def zoom_poll(
    server: ZoomServer, http: httpx.Client, device_code: str
) -> httpx.Response:
    return http.post(
        server.token_url,
        data={"grant_type": DEVICE_CODE_GRANT_TYPE, "device_code": device_code},
        auth=(server.client_id, server.client_secret),
    )


def test_zoom_device_pending_then_tokens(zoom_server, http):
    device = zoom_device(zoom_server, http)

    pending = zoom_poll(zoom_server, http, device["device_code"])
    zoom_server.approve_device(device["user_code"])
    zoom_server.advance_time(device["interval"])
    granted = zoom_poll(zoom_server, http, device["device_code"])

    assert device["verification_uri"] == zoom_server.verification_uri
    assert device["user_code"] in device["verification_uri_complete"]
    assert device["interval"] == 5
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    assert granted.status_code == 200
    assert zoom_server.is_refresh_token_live(granted.json()["refresh_token"])


def test_zoom_device_fast_poll_slow_down(zoom_server, http):
    device = zoom_device(zoom_server, http)

    zoom_poll(zoom_server, http, device["device_code"])
    fast = zoom_poll(zoom_server, http, device["device_code"])

    assert fast.json()["error"] == "slow_down"
    assert zoom_server.last_device_authorization.interval == 10


def test_zoom_device_denied(zoom_server, http):
    device = zoom_device(zoom_server, http)
    zoom_server.deny_device(device["user_code"])

    response = zoom_poll(zoom_server, http, device["device_code"])

    assert response.json()["error"] == "access_denied"


def test_zoom_device_expired(zoom_server, http):
    device = zoom_device(zoom_server, http)
    zoom_server.advance_time(device["expires_in"])

    response = zoom_poll(zoom_server, http, device["device_code"])

    assert response.json()["error"] == "expired_token"


def test_zoom_device_disabled_rejected(zoom_server, http):
    zoom_server.device_flow_enabled = False

    response = http.post(
        zoom_server.device_authorization_url,
        auth=(zoom_server.client_id, zoom_server.client_secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_zoom_device_code_needs_basic(zoom_server, http):
    response = http.post(
        zoom_server.device_authorization_url,
        params={"client_id": zoom_server.client_id},
    )

    assert response.status_code == 401


# ---------------------------------------------------------------------------
# Google
# ---------------------------------------------------------------------------


def google_code(
    server: GoogleServer,
    http: httpx.Client,
    redirect_uri: str = REDIRECT_URI,
    **extra: str,
) -> str:
    params = {
        "client_id": server.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": DRIVE_FILE,
    }
    params.update(extra)
    return code_from(authorize(http, server, **params))


def google_exchange(
    server: GoogleServer, http: httpx.Client, code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    data.update(extra)
    return http.post(server.token_url, data=data)


def google_offline_tokens(server: GoogleServer, http: httpx.Client) -> dict[str, Any]:
    code = google_code(server, http, access_type="offline")
    response = google_exchange(server, http, code)
    assert response.status_code == 200, response.text
    return response.json()


def test_google_authorize_oob_rejected(google_server, http):
    response = authorize(
        http,
        google_server,
        client_id=google_server.client_id,
        redirect_uri="urn:ietf:wg:oauth:2.0:oob",
        response_type="code",
        scope=DRIVE_FILE,
    )

    assert response.status_code == 400
    assert "Error 400: invalid_request" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:5000/", "http://127.0.0.1:61234", "http://localhost:8080/cb"],
)
def test_google_loopback_any_port_accepted(google_server, http, redirect_uri):
    response = authorize(
        http,
        google_server,
        client_id=google_server.client_id,
        redirect_uri=redirect_uri,
        response_type="code",
        scope=DRIVE_FILE,
        state="st",
    )

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(redirect_uri)
    assert query_of(location)["state"] == "st"
    assert query_of(location)["scope"] == DRIVE_FILE


def test_google_desktop_rejects_remote_redirect(google_server, http):
    response = authorize(
        http,
        google_server,
        client_id=google_server.client_id,
        redirect_uri="https://app.example.com/callback",
        response_type="code",
        scope=DRIVE_FILE,
    )

    assert response.status_code == 400
    assert "Error 400: redirect_uri_mismatch" in response.text


def test_google_web_client_needs_registered_redirect(http):
    registered = "https://app.example.com/callback"
    with GoogleServer(client_type="web", redirect_uris=[registered]) as server:
        loopback = authorize(
            http,
            server,
            client_id=server.client_id,
            redirect_uri=REDIRECT_URI,
            response_type="code",
            scope=DRIVE_FILE,
        )
        listed = authorize(
            http,
            server,
            client_id=server.client_id,
            redirect_uri=registered,
            response_type="code",
            scope=DRIVE_FILE,
        )

    assert loopback.status_code == 400
    assert listed.status_code == 302


def test_google_authorize_unknown_client_rejected(google_server, http):
    response = authorize(
        http,
        google_server,
        client_id="nope",
        redirect_uri=REDIRECT_URI,
        response_type="code",
        scope=DRIVE_FILE,
    )

    assert response.status_code == 401
    assert "invalid_client" in response.text


def test_google_authorize_missing_scope_rejected(google_server, http):
    response = authorize(
        http,
        google_server,
        client_id=google_server.client_id,
        redirect_uri=REDIRECT_URI,
        response_type="code",
    )

    assert response.status_code == 400
    assert "scope" in response.text


def test_google_exchange_without_secret_rejected(google_server, http):
    verifier, challenge = new_pkce_pair()
    code = google_code(
        google_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = http.post(
        google_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": google_server.client_id,
            "code_verifier": verifier,
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "client_secret is missing.",
    }


def test_google_exchange_form_secret_with_pkce(google_server, http):
    verifier, challenge = new_pkce_pair()
    code = google_code(
        google_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = google_exchange(google_server, http, code, code_verifier=verifier)

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 3599
    assert body["token_type"] == "Bearer"
    assert body["scope"] == DRIVE_FILE


def test_google_exchange_basic_secret(google_server, http):
    code = google_code(google_server, http)

    response = http.post(
        google_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
        auth=(google_server.client_id, google_server.client_secret),
    )

    assert response.status_code == 200


def test_google_wrong_secret_invalid_client(google_server, http):
    code = google_code(google_server, http)

    response = google_exchange(google_server, http, code, client_secret="wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_google_pkce_mismatch_invalid_grant(google_server, http):
    _, challenge = new_pkce_pair()
    code = google_code(
        google_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = google_exchange(
        google_server, http, code, code_verifier="other-verifier"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_google_pkce_missing_verifier_invalid_grant(google_server, http):
    _, challenge = new_pkce_pair()
    code = google_code(
        google_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = google_exchange(google_server, http, code)

    assert response.json()["error_description"] == "Missing code verifier."


def test_google_exchange_redirect_mismatch(google_server, http):
    code = google_code(google_server, http)

    response = google_exchange(
        google_server, http, code, redirect_uri="http://127.0.0.1:9/other"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "redirect_uri_mismatch"


def test_google_json_token_body_rejected(google_server, http):
    code = google_code(google_server, http)

    response = http.post(
        google_server.token_url,
        json={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": google_server.client_id,
            "client_secret": google_server.client_secret,
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_google_online_access_no_refresh_token(google_server, http):
    code = google_code(google_server, http)

    body = google_exchange(google_server, http, code).json()

    assert "refresh_token" not in body


def test_google_refresh_token_first_consent_only(google_server, http):
    first = google_offline_tokens(google_server, http)
    second = google_offline_tokens(google_server, http)
    code = google_code(google_server, http, access_type="offline", prompt="consent")
    forced = google_exchange(google_server, http, code).json()

    assert "refresh_token" in first
    assert "refresh_token" not in second
    assert "refresh_token" in forced


def test_google_refresh_keeps_refresh_token(google_server, http):
    refresh = google_offline_tokens(google_server, http)["refresh_token"]

    response = http.post(
        google_server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": google_server.client_id,
            "client_secret": google_server.client_secret,
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body
    assert body["expires_in"] == 3599
    assert google_server.is_refresh_token_live(refresh)
    assert google_server.is_access_token_live(body["access_token"])


def test_google_refresh_needs_secret(google_server, http):
    refresh = google_offline_tokens(google_server, http)["refresh_token"]

    response = http.post(
        google_server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": google_server.client_id,
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_google_refresh_unknown_token_invalid_grant(google_server, http):
    response = http.post(
        google_server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": "1//unknown",
            "client_id": google_server.client_id,
            "client_secret": google_server.client_secret,
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_google_testing_app_refresh_expires(http):
    with GoogleServer(refresh_token_lifetime=604800) as server:
        refresh = google_offline_tokens(server, http)["refresh_token"]
        server.advance_time(604800)

        assert not server.is_refresh_token_live(refresh)


def test_google_refresh_token_limit_drops_oldest(google_server, http):
    google_server.max_refresh_tokens_per_user = 2
    refresh_tokens = []
    for _ in range(3):
        code = google_code(google_server, http, access_type="offline", prompt="consent")
        refresh_tokens.append(
            google_exchange(google_server, http, code).json()["refresh_token"]
        )

    assert not google_server.is_refresh_token_live(refresh_tokens[0])
    assert google_server.is_refresh_token_live(refresh_tokens[1])
    assert google_server.is_refresh_token_live(refresh_tokens[2])


def test_google_revoke_needs_no_client_auth(google_server, http):
    tokens = google_offline_tokens(google_server, http)

    response = http.post(
        google_server.revoke_url,
        params={"token": tokens["refresh_token"]},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200
    assert google_server.revoked_tokens == [tokens["refresh_token"]]
    assert not google_server.is_refresh_token_live(tokens["refresh_token"])
    assert not google_server.is_access_token_live(tokens["access_token"])


def test_google_revoke_access_token_form_field(google_server, http):
    tokens = google_offline_tokens(google_server, http)

    response = http.post(
        google_server.revoke_url, data={"token": tokens["access_token"]}
    )

    assert response.status_code == 200
    assert not google_server.is_refresh_token_live(tokens["refresh_token"])


def test_google_revoke_resets_offline_consent(google_server, http):
    tokens = google_offline_tokens(google_server, http)
    http.post(google_server.revoke_url, data={"token": tokens["refresh_token"]})

    again = google_offline_tokens(google_server, http)

    assert "refresh_token" in again


def test_google_revoke_unknown_token_rejected(google_server, http):
    response = http.post(google_server.revoke_url, data={"token": "ya29.unknown"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"


@pytest.fixture
def google_tv_server() -> Iterator[GoogleServer]:
    with GoogleServer(client_type="tv") as server:
        yield server


def google_device(server: GoogleServer, http: httpx.Client, scope: str = DRIVE_FILE):
    return http.post(
        server.device_authorization_url,
        data={"client_id": server.client_id, "scope": scope},
    )


def google_poll(server: GoogleServer, http: httpx.Client, device_code: str, **extra):
    data = {
        "grant_type": DEVICE_CODE_GRANT_TYPE,
        "device_code": device_code,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    data.update(extra)
    return http.post(server.token_url, data=data)


def test_google_device_rejects_desktop_client(google_server, http):
    response = google_device(google_server, http)

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client type.",
    }


def test_google_device_rejects_full_drive_scope(google_tv_server, http):
    response = google_device(
        google_tv_server, http, "openid https://www.googleapis.com/auth/drive"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_google_device_response_uses_verification_url(google_tv_server, http):
    body = google_device(google_tv_server, http).json()

    assert body["verification_url"] == google_tv_server.verification_url
    assert "verification_uri" not in body
    assert body["expires_in"] == 1800
    assert body["interval"] == 5
    assert body["user_code"]
    assert body["device_code"]


def test_google_device_verification_uri_knob(google_tv_server, http):
    google_tv_server.include_verification_uri = True

    body = google_device(google_tv_server, http).json()

    assert body["verification_uri"] == body["verification_url"]


def test_google_device_pending_is_428(google_tv_server, http):
    device = google_device(google_tv_server, http).json()

    response = google_poll(google_tv_server, http, device["device_code"])

    assert response.status_code == 428
    assert response.json()["error"] == "authorization_pending"


def test_google_device_fast_poll_slow_down_403(google_tv_server, http):
    device = google_device(google_tv_server, http).json()

    google_poll(google_tv_server, http, device["device_code"])
    fast = google_poll(google_tv_server, http, device["device_code"])
    google_tv_server.advance_time(10)
    later = google_poll(google_tv_server, http, device["device_code"])

    assert fast.status_code == 403
    assert fast.json()["error"] == "slow_down"
    assert later.json()["error"] == "authorization_pending"


def test_google_device_denied_403(google_tv_server, http):
    device = google_device(google_tv_server, http).json()
    google_tv_server.deny_device(device["user_code"])

    response = google_poll(google_tv_server, http, device["device_code"])

    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


def test_google_device_expired_token(google_tv_server, http):
    device = google_device(google_tv_server, http).json()
    google_tv_server.expire_device(device["user_code"])

    response = google_poll(google_tv_server, http, device["device_code"])

    assert response.status_code == 400
    assert response.json()["error"] == "expired_token"


def test_google_device_approved_gives_refresh(google_tv_server, http):
    device = google_device(google_tv_server, http).json()
    google_tv_server.approve_device(device["user_code"])

    response = google_poll(google_tv_server, http, device["device_code"])
    again = google_poll(google_tv_server, http, device["device_code"])

    assert response.status_code == 200
    assert google_tv_server.is_refresh_token_live(response.json()["refresh_token"])
    assert again.json()["error"] == "invalid_grant"


def test_google_device_poll_needs_secret(google_tv_server, http):
    device = google_device(google_tv_server, http).json()

    response = google_poll(
        google_tv_server, http, device["device_code"], client_secret=""
    )

    assert response.status_code == 400
    assert response.json()["error_description"] == "client_secret is missing."


# ---------------------------------------------------------------------------
# Microsoft
# ---------------------------------------------------------------------------

MS_REDIRECT = "http://localhost:53100"


def ms_code(
    server: MicrosoftServer,
    http: httpx.Client,
    scope: str = f"{GRAPH_READ} offline_access",
    tenant: str | None = None,
    **extra: str,
) -> str:
    params = {
        "client_id": server.client_id,
        "redirect_uri": MS_REDIRECT,
        "response_type": "code",
        "scope": scope,
    }
    params.update(extra)
    return code_from(
        authorize(http, server, server.authorize_url_for(tenant), **params)
    )


def ms_token(
    server: MicrosoftServer,
    http: httpx.Client,
    data: dict[str, str],
    tenant: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return http.post(server.token_url_for(tenant), data=data, **kwargs)


def ms_exchange(server: MicrosoftServer, http: httpx.Client, code: str, **extra: str):
    data = {
        "grant_type": "authorization_code",
        "client_id": server.client_id,
        "code": code,
        "redirect_uri": MS_REDIRECT,
    }
    data.update(extra)
    return ms_token(server, http, data)


def ms_tokens(server: MicrosoftServer, http: httpx.Client, **extra: str):
    response = ms_exchange(server, http, ms_code(server, http), **extra)
    assert response.status_code == 200, response.text
    return response.json()


def assert_aadsts(response: httpx.Response, status: int, error: str, code: int):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert body["error_codes"] == [code]
    assert body["trace_id"]
    assert body["correlation_id"]


def test_microsoft_tenant_recorded_from_path(microsoft_server, http):
    tenant = microsoft_server.tenant_id

    code = ms_code(microsoft_server, http, tenant=tenant)
    ms_token(
        microsoft_server,
        http,
        {
            "grant_type": "authorization_code",
            "client_id": microsoft_server.client_id,
            "code": code,
            "redirect_uri": MS_REDIRECT,
        },
        tenant="organizations",
    )

    assert microsoft_server.tenants_seen == [tenant, "organizations"]
    assert microsoft_server.codes[code].extra["tenant"] == tenant


def test_microsoft_unknown_tenant_rejected(microsoft_server, http):
    response = ms_token(
        microsoft_server, http, {"grant_type": "refresh_token"}, tenant="fabrikam.com"
    )

    assert_aadsts(response, 400, "invalid_request", 90002)


def test_microsoft_public_client_secret_rejected(microsoft_server, http):
    code = ms_code(microsoft_server, http)

    response = ms_exchange(
        microsoft_server, http, code, client_secret=microsoft_server.client_secret
    )

    assert_aadsts(response, 401, "invalid_client", 700025)


def test_microsoft_public_client_basic_secret_rejected(microsoft_server, http):
    code = ms_code(microsoft_server, http)

    response = ms_token(
        microsoft_server,
        http,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": MS_REDIRECT},
        auth=(microsoft_server.client_id, microsoft_server.client_secret),
    )

    assert_aadsts(response, 401, "invalid_client", 700025)


def test_microsoft_confidential_without_secret_rejected(microsoft_server, http):
    microsoft_server.public_client = False
    code = ms_code(microsoft_server, http)

    response = ms_exchange(microsoft_server, http, code)

    assert_aadsts(response, 401, "invalid_client", 7000218)


def test_microsoft_confidential_wrong_secret_rejected(microsoft_server, http):
    microsoft_server.public_client = False
    code = ms_code(microsoft_server, http)

    response = ms_exchange(microsoft_server, http, code, client_secret="wrong")

    assert_aadsts(response, 401, "invalid_client", 7000215)


def test_microsoft_confidential_secret_form_or_basic(microsoft_server, http):
    microsoft_server.public_client = False
    form_code = ms_code(microsoft_server, http)
    basic_code = ms_code(microsoft_server, http)

    form = ms_exchange(
        microsoft_server, http, form_code, client_secret=microsoft_server.client_secret
    )
    basic = ms_token(
        microsoft_server,
        http,
        {
            "grant_type": "authorization_code",
            "code": basic_code,
            "redirect_uri": MS_REDIRECT,
        },
        auth=(microsoft_server.client_id, microsoft_server.client_secret),
    )

    assert form.status_code == 200
    assert basic.status_code == 200


def test_microsoft_token_response_fields(microsoft_server, http):
    body = ms_tokens(microsoft_server, http)

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    assert body["scope"] == GRAPH_READ
    assert microsoft_server.is_refresh_token_live(body["refresh_token"])


def test_microsoft_no_offline_access_no_refresh(microsoft_server, http):
    code = ms_code(microsoft_server, http, scope=GRAPH_READ)

    body = ms_exchange(microsoft_server, http, code).json()

    assert "access_token" in body
    assert "refresh_token" not in body


def ms_refresh(server: MicrosoftServer, http: httpx.Client, token: str, **extra: str):
    data = {
        "grant_type": "refresh_token",
        "client_id": server.client_id,
        "refresh_token": token,
    }
    data.update(extra)
    return ms_token(server, http, data)


def test_microsoft_refresh_returns_new_refresh_token(microsoft_server, http):
    old = ms_tokens(microsoft_server, http)["refresh_token"]

    response = ms_refresh(microsoft_server, http, old)

    assert response.status_code == 200
    new = response.json()["refresh_token"]
    assert new != old
    assert microsoft_server.is_refresh_token_live(new)
    assert microsoft_server.is_refresh_token_live(old)


def test_microsoft_knob_kills_used_refresh_token(microsoft_server, http):
    microsoft_server.revoke_used_refresh_tokens = True
    old = ms_tokens(microsoft_server, http)["refresh_token"]

    ms_refresh(microsoft_server, http, old)
    reuse = ms_refresh(microsoft_server, http, old)

    assert_aadsts(reuse, 400, "invalid_grant", 70000)


def test_microsoft_mixed_resources_rejected_at_authorize(microsoft_server, http):
    response = authorize(
        http,
        microsoft_server,
        client_id=microsoft_server.client_id,
        redirect_uri=MS_REDIRECT,
        response_type="code",
        state="s",
        scope=f"{GRAPH_READ} api://other-api/access offline_access",
    )

    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_scope"
    assert query["error_description"].startswith("AADSTS28000:")
    assert query["state"] == "s"


def test_microsoft_mixed_resources_rejected_at_refresh(microsoft_server, http):
    refresh = ms_tokens(microsoft_server, http)["refresh_token"]

    response = ms_refresh(
        microsoft_server,
        http,
        refresh,
        scope="User.Read https://storage.azure.com/user_impersonation",
    )

    assert_aadsts(response, 400, "invalid_scope", 28000)


def test_microsoft_bare_and_full_graph_scopes_mix(microsoft_server, http):
    code = ms_code(
        microsoft_server, http, scope="User.Read https://graph.microsoft.com/Files.Read"
    )

    response = ms_exchange(microsoft_server, http, code)

    assert response.status_code == 200


def ms_client_credentials(
    server: MicrosoftServer,
    http: httpx.Client,
    tenant: str,
    scope: str = "https://graph.microsoft.com/.default",
):
    return ms_token(
        server,
        http,
        {
            "grant_type": "client_credentials",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
            "scope": scope,
        },
        tenant=tenant,
    )


def test_microsoft_client_credentials_with_tenant(microsoft_server, http):
    microsoft_server.public_client = False

    response = ms_client_credentials(microsoft_server, http, microsoft_server.tenant_id)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    assert microsoft_server.is_access_token_live(body["access_token"])


def test_microsoft_client_credentials_rejects_common(microsoft_server, http):
    microsoft_server.public_client = False

    response = ms_client_credentials(microsoft_server, http, "common")

    assert_aadsts(response, 400, "invalid_request", 50059)


def test_microsoft_client_credentials_needs_default_scope(microsoft_server, http):
    microsoft_server.public_client = False

    response = ms_client_credentials(
        microsoft_server, http, microsoft_server.tenant_domain, scope=GRAPH_READ
    )

    assert_aadsts(response, 400, "invalid_scope", 1002012)


def test_microsoft_client_credentials_rejects_public_client(microsoft_server, http):
    response = ms_token(
        microsoft_server,
        http,
        {
            "grant_type": "client_credentials",
            "client_id": microsoft_server.client_id,
            "scope": "https://graph.microsoft.com/.default",
        },
        tenant=microsoft_server.tenant_id,
    )

    assert_aadsts(response, 401, "invalid_client", 7000218)


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://localhost", "http://localhost:53100"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:40000/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1/callback"),
    ],
)
def test_microsoft_loopback_port_ignored(http, registered, requested):
    with MicrosoftServer(redirect_uris=[registered]) as server:
        response = authorize(
            http,
            server,
            client_id=server.client_id,
            redirect_uri=requested,
            response_type="code",
            scope=GRAPH_READ,
        )

    assert response.status_code == 302
    assert response.headers["location"].startswith(requested)


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://[::1]/callback", "http://[::1]:5000/callback"),
        ("http://[::1]/callback", "http://[::1]/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:40000/other"),
        ("https://app.example.com/cb", "https://app.example.com:444/cb"),
    ],
)
def test_microsoft_redirect_mismatch_rejected(http, registered, requested):
    with MicrosoftServer(redirect_uris=[registered]) as server:
        response = authorize(
            http,
            server,
            client_id=server.client_id,
            redirect_uri=requested,
            response_type="code",
            scope=GRAPH_READ,
        )

    assert response.status_code == 400
    assert "AADSTS50011" in response.text


def test_microsoft_pkce_mismatch_rejected(microsoft_server, http):
    _, challenge = new_pkce_pair()
    code = ms_code(
        microsoft_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = ms_exchange(microsoft_server, http, code, code_verifier="wrong")

    assert_aadsts(response, 400, "invalid_grant", 501481)


def test_microsoft_pkce_s256_accepted(microsoft_server, http):
    verifier, challenge = new_pkce_pair()
    code = ms_code(
        microsoft_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = ms_exchange(microsoft_server, http, code, code_verifier=verifier)

    assert response.status_code == 200


def test_microsoft_code_reuse_rejected(microsoft_server, http):
    code = ms_code(microsoft_server, http)
    ms_exchange(microsoft_server, http, code)

    response = ms_exchange(microsoft_server, http, code)

    assert_aadsts(response, 400, "invalid_grant", 54005)


def test_microsoft_json_body_missing_grant_type(microsoft_server, http):
    response = http.post(
        microsoft_server.token_url,
        json={"grant_type": "refresh_token", "client_id": microsoft_server.client_id},
    )

    assert_aadsts(response, 400, "invalid_request", 900144)


def test_microsoft_denied_authorization(microsoft_server, http):
    microsoft_server.deny_next_authorization()

    response = authorize(
        http,
        microsoft_server,
        client_id=microsoft_server.client_id,
        redirect_uri=MS_REDIRECT,
        response_type="code",
        scope=GRAPH_READ,
        state="s",
    )

    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "s"


def test_microsoft_throttled_429_with_retry_after(microsoft_server, http):
    microsoft_server.fail_next(429, retry_after=2)

    response = ms_refresh(microsoft_server, http, "anything")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error_codes"] == [90055]


def test_microsoft_has_no_revocation_endpoint(microsoft_server, http):
    response = http.post(microsoft_server.url("/common/oauth2/v2.0/revoke"))

    assert microsoft_server.revoke_url is None
    assert response.status_code == 404


def ms_device(server: MicrosoftServer, http: httpx.Client, scope: str | None = None):
    response = http.post(
        server.device_authorization_url,
        data={
            "client_id": server.client_id,
            "scope": scope or f"{GRAPH_READ} offline_access",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def ms_poll(server: MicrosoftServer, http: httpx.Client, device_code: str):
    return ms_token(
        server,
        http,
        {
            "grant_type": DEVICE_CODE_GRANT_TYPE,
            "client_id": server.client_id,
            "device_code": device_code,
        },
    )


def test_microsoft_device_response_fields(microsoft_server, http):
    device = ms_device(microsoft_server, http)

    assert device["verification_uri"] == microsoft_server.verification_uri
    assert device["user_code"] in device["message"]
    assert device["verification_uri"] in device["message"]
    assert device["expires_in"] == 900
    assert device["interval"] == 5


def test_microsoft_device_pending_then_tokens(microsoft_server, http):
    device = ms_device(microsoft_server, http)

    pending = ms_poll(microsoft_server, http, device["device_code"])
    microsoft_server.approve_device(device["user_code"])
    granted = ms_poll(microsoft_server, http, device["device_code"])

    assert_aadsts(pending, 400, "authorization_pending", 70016)
    assert granted.status_code == 200
    assert "refresh_token" in granted.json()


def test_microsoft_device_declined(microsoft_server, http):
    device = ms_device(microsoft_server, http)
    microsoft_server.deny_device(device["user_code"])

    response = ms_poll(microsoft_server, http, device["device_code"])

    assert response.json()["error"] == "authorization_declined"


def test_microsoft_device_expired(microsoft_server, http):
    device = ms_device(microsoft_server, http)
    microsoft_server.advance_time(901)

    response = ms_poll(microsoft_server, http, device["device_code"])

    assert response.json()["error"] == "expired_token"


def test_microsoft_device_unknown_code(microsoft_server, http):
    response = ms_poll(microsoft_server, http, "not-a-device-code")

    assert response.json()["error"] == "bad_verification_code"


def test_microsoft_device_slow_down_only_with_knob(microsoft_server, http):
    device = ms_device(microsoft_server, http)
    ms_poll(microsoft_server, http, device["device_code"])
    without_knob = ms_poll(microsoft_server, http, device["device_code"])

    microsoft_server.device_slow_down = True
    with_knob = ms_poll(microsoft_server, http, device["device_code"])

    assert without_knob.json()["error"] == "authorization_pending"
    assert with_knob.json()["error"] == "slow_down"


# ---------------------------------------------------------------------------
# Dropbox
# ---------------------------------------------------------------------------


def dropbox_code(server: DropboxServer, http: httpx.Client, **extra: str) -> str:
    params = {
        "client_id": server.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
    }
    params.update(extra)
    return code_from(authorize(http, server, **params))


def dropbox_exchange(
    server: DropboxServer, http: httpx.Client, code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    data.update(extra)
    return http.post(server.token_url, data={k: v for k, v in data.items() if v})


def dropbox_offline_tokens(server: DropboxServer, http: httpx.Client) -> dict[str, Any]:
    code = dropbox_code(server, http, token_access_type="offline")
    response = dropbox_exchange(server, http, code)
    assert response.status_code == 200, response.text
    return response.json()


def test_dropbox_no_redirect_shows_code_page(dropbox_server, http):
    response = authorize(
        http, dropbox_server, client_id=dropbox_server.client_id, response_type="code"
    )

    code = dropbox_server.last_code.value
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'<code id="auth-code">{code}</code>' in response.text
    exchanged = dropbox_exchange(dropbox_server, http, code, redirect_uri="")
    assert exchanged.status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8766/callback",
        "http://127.0.0.1:8765/callback/",
        "http://localhost:8765/callback",
    ],
)
def test_dropbox_redirect_must_match_exactly(dropbox_server, http, redirect_uri):
    response = authorize(
        http,
        dropbox_server,
        client_id=dropbox_server.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
    )

    assert response.status_code == 400
    assert "redirect_uri" in response.text


def test_dropbox_redirect_carries_code_and_state(dropbox_server, http):
    response = authorize(
        http,
        dropbox_server,
        client_id=dropbox_server.client_id,
        response_type="code",
        redirect_uri=REDIRECT_URI,
        state="abc",
    )

    query = query_of(response.headers["location"])
    assert query["state"] == "abc"
    assert query["code"] == dropbox_server.last_code.value


def test_dropbox_invalid_token_access_type_rejected(dropbox_server, http):
    response = authorize(
        http,
        dropbox_server,
        client_id=dropbox_server.client_id,
        response_type="code",
        token_access_type="forever",
    )

    assert response.status_code == 400


def test_dropbox_token_form_credentials(dropbox_server, http):
    code = dropbox_code(dropbox_server, http)

    response = dropbox_exchange(dropbox_server, http, code)

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 14400
    assert body["token_type"] == "bearer"
    assert body["account_id"].startswith("dbid:")
    assert body["uid"]


def test_dropbox_token_basic_credentials(dropbox_server, http):
    code = dropbox_code(dropbox_server, http)

    response = http.post(
        dropbox_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
        auth=(dropbox_server.client_id, dropbox_server.client_secret),
    )

    assert response.status_code == 200


def test_dropbox_token_without_credentials_rejected(dropbox_server, http):
    code = dropbox_code(dropbox_server, http)

    response = http.post(
        dropbox_server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "No auth function available for given request",
    }


def test_dropbox_token_wrong_secret_rejected(dropbox_server, http):
    code = dropbox_code(dropbox_server, http)

    response = dropbox_exchange(dropbox_server, http, code, client_secret="wrong")

    assert response.json()["error"] == "invalid_client"


def test_dropbox_access_token_lasts_four_hours(dropbox_server, http):
    access = dropbox_exchange(
        dropbox_server, http, dropbox_code(dropbox_server, http)
    ).json()["access_token"]

    dropbox_server.advance_time(14399)
    live_before = dropbox_server.is_access_token_live(access)
    dropbox_server.advance_time(1)

    assert live_before
    assert not dropbox_server.is_access_token_live(access)


def test_dropbox_refresh_token_only_offline(dropbox_server, http):
    online = dropbox_exchange(
        dropbox_server,
        http,
        dropbox_code(dropbox_server, http, token_access_type="online"),
    ).json()
    offline = dropbox_offline_tokens(dropbox_server, http)

    assert "refresh_token" not in online
    assert "refresh_token" in offline


def test_dropbox_refresh_does_not_rotate(dropbox_server, http):
    refresh = dropbox_offline_tokens(dropbox_server, http)["refresh_token"]
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": dropbox_server.client_id,
        "client_secret": dropbox_server.client_secret,
    }

    first = http.post(dropbox_server.token_url, data=data)
    second = http.post(dropbox_server.token_url, data=data)

    assert first.status_code == 200
    assert second.status_code == 200
    assert "refresh_token" not in first.json()
    assert first.json()["expires_in"] == 14400
    assert dropbox_server.is_refresh_token_live(refresh)


def test_dropbox_pkce_grant_needs_no_secret(dropbox_server, http):
    verifier, challenge = new_pkce_pair()
    code = dropbox_code(
        dropbox_server,
        http,
        token_access_type="offline",
        code_challenge=challenge,
        code_challenge_method="S256",
    )

    exchanged = dropbox_exchange(
        dropbox_server, http, code, client_secret="", code_verifier=verifier
    )
    refreshed = http.post(
        dropbox_server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
            "client_id": dropbox_server.client_id,
        },
    )

    assert exchanged.status_code == 200
    assert refreshed.status_code == 200


def test_dropbox_plain_grant_refresh_needs_secret(dropbox_server, http):
    refresh = dropbox_offline_tokens(dropbox_server, http)["refresh_token"]

    response = http.post(
        dropbox_server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": dropbox_server.client_id,
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_dropbox_pkce_mismatch_rejected(dropbox_server, http):
    _, challenge = new_pkce_pair()
    code = dropbox_code(
        dropbox_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = dropbox_exchange(dropbox_server, http, code, code_verifier="wrong")

    assert response.json()["error"] == "invalid_grant"


def test_dropbox_exchange_needs_same_redirect(dropbox_server, http):
    code = dropbox_code(dropbox_server, http)

    response = dropbox_exchange(dropbox_server, http, code, redirect_uri="")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_dropbox_revoke_kills_access_and_refresh(dropbox_server, http):
    tokens = dropbox_offline_tokens(dropbox_server, http)

    response = http.post(
        dropbox_server.revoke_url,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )

    assert response.status_code == 200
    assert response.text == "null"
    assert dropbox_server.revoked_tokens == [tokens["access_token"]]
    assert not dropbox_server.is_access_token_live(tokens["access_token"])
    assert not dropbox_server.is_refresh_token_live(tokens["refresh_token"])


def test_dropbox_revoke_without_bearer_401(dropbox_server, http):
    response = http.post(dropbox_server.revoke_url)

    assert response.status_code == 401
    assert response.json()["error"][".tag"] == "invalid_access_token"


def test_dropbox_revoke_rejects_body(dropbox_server, http):
    tokens = dropbox_offline_tokens(dropbox_server, http)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    with_json = http.post(dropbox_server.revoke_url, headers=headers, json={"x": 1})
    with_form = http.post(dropbox_server.revoke_url, headers=headers, data={"x": "1"})
    empty_json = http.post(
        dropbox_server.revoke_url,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert with_json.status_code == 400
    assert with_form.status_code == 400
    assert empty_json.status_code == 400
    assert dropbox_server.is_access_token_live(tokens["access_token"])


def test_dropbox_revoke_accepts_json_null(dropbox_server, http):
    tokens = dropbox_offline_tokens(dropbox_server, http)

    response = http.post(
        dropbox_server.revoke_url,
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "Content-Type": "application/json",
        },
        content=b"null",
    )

    assert response.status_code == 200


def test_dropbox_rate_limit_body(dropbox_server, http):
    dropbox_server.fail_next(429, retry_after=3)

    response = http.post(dropbox_server.token_url)

    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["retry_after"] == 3


# ---------------------------------------------------------------------------
# GitHub
# ---------------------------------------------------------------------------

GITHUB_REDIRECT = "http://127.0.0.1:51234/callback"


def github_code(server: GitHubServer, http: httpx.Client, **extra: str) -> str:
    params = {
        "client_id": server.client_id,
        "redirect_uri": GITHUB_REDIRECT,
        "scope": "repo read:org",
    }
    params.update(extra)
    return code_from(authorize(http, server, **params))


def github_exchange(
    server: GitHubServer,
    http: httpx.Client,
    code: str,
    accept: str | None = "application/json",
    **extra: str,
) -> httpx.Response:
    data = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "code": code,
        "redirect_uri": GITHUB_REDIRECT,
    }
    data.update(extra)
    headers = {"Accept": accept} if accept else {}
    return http.post(
        server.token_url, data={k: v for k, v in data.items() if v}, headers=headers
    )


def github_tokens(server: GitHubServer, http: httpx.Client) -> dict[str, Any]:
    response = github_exchange(server, http, github_code(server, http))
    assert "access_token" in response.json(), response.text
    return response.json()


def test_github_token_form_encoded_by_default(github_server, http):
    code = github_code(github_server, http)

    response = github_exchange(github_server, http, code, accept=None)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/x-www-form-urlencoded"
    )
    assert "scope=repo%2Cread%3Aorg" in response.text
    fields = dict(urllib.parse.parse_qsl(response.text))
    assert fields["token_type"] == "bearer"
    assert fields["scope"] == "repo,read:org"
    assert github_server.is_access_token_live(fields["access_token"])


def test_github_token_json_with_accept(github_server, http):
    body = github_tokens(github_server, http)

    assert body["scope"] == "repo,read:org"
    assert body["token_type"] == "bearer"
    assert body["access_token"].startswith("gho_")


def test_github_token_xml_with_accept(github_server, http):
    code = github_code(github_server, http)

    response = github_exchange(github_server, http, code, accept="application/xml")

    assert response.headers["content-type"].startswith("application/xml")
    assert "<access_token>gho_" in response.text


def test_github_json_request_body_accepted(github_server, http):
    code = github_code(github_server, http)

    response = http.post(
        github_server.token_url,
        json={
            "client_id": github_server.client_id,
            "client_secret": github_server.client_secret,
            "code": code,
        },
        headers={"Accept": "application/json"},
    )

    assert "access_token" in response.json()


def test_github_classic_token_never_expires(github_server, http):
    body = github_tokens(github_server, http)
    github_server.advance_time(10 * 365 * 86400)

    assert "expires_in" not in body
    assert "refresh_token" not in body
    assert github_server.is_access_token_live(body["access_token"])


def test_github_bad_code_error_with_200(github_server, http):
    response = github_exchange(github_server, http, "not-a-code")

    assert response.status_code == 200
    body = response.json()
    assert body["error"] == "bad_verification_code"
    assert body["error_description"] == "The code passed is incorrect or expired."
    assert body["error_uri"]


def test_github_error_form_encoded_by_default(github_server, http):
    response = github_exchange(github_server, http, "not-a-code", accept=None)

    assert response.status_code == 200
    assert (
        dict(urllib.parse.parse_qsl(response.text))["error"] == "bad_verification_code"
    )


def test_github_wrong_secret_incorrect_credentials(github_server, http):
    code = github_code(github_server, http)

    response = github_exchange(github_server, http, code, client_secret="wrong")

    assert response.status_code == 200
    assert response.json()["error"] == "incorrect_client_credentials"


def test_github_pkce_s256_with_secret(github_server, http):
    verifier, challenge = new_pkce_pair()
    code = github_code(
        github_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = github_exchange(github_server, http, code, code_verifier=verifier)

    assert "access_token" in response.json()


def test_github_pkce_still_needs_secret(github_server, http):
    verifier, challenge = new_pkce_pair()
    code = github_code(
        github_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = github_exchange(
        github_server, http, code, client_secret="", code_verifier=verifier
    )

    assert response.json()["error"] == "incorrect_client_credentials"


def test_github_pkce_mismatch_rejected(github_server, http):
    _, challenge = new_pkce_pair()
    code = github_code(
        github_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = github_exchange(github_server, http, code, code_verifier="wrong")

    assert response.json()["error"] == "bad_verification_code"


def test_github_pkce_plain_rejected(github_server, http):
    response = authorize(
        http,
        github_server,
        client_id=github_server.client_id,
        redirect_uri=GITHUB_REDIRECT,
        code_challenge="abc",
        code_challenge_method="plain",
    )

    assert query_of(response.headers["location"])["error"] == "invalid_request"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:51234/callback",
        "http://127.0.0.1:8/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:9000/callback/sub",
    ],
)
def test_github_loopback_callback_any_port(github_server, http, redirect_uri):
    response = authorize(
        http,
        github_server,
        client_id=github_server.client_id,
        redirect_uri=redirect_uri,
        state="s",
    )

    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    assert "code" in query_of(location)


def test_github_redirect_mismatch_goes_to_callback(github_server, http):
    response = authorize(
        http,
        github_server,
        client_id=github_server.client_id,
        redirect_uri="http://127.0.0.1:9000/other",
        state="s",
    )

    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1/callback?")
    query = query_of(location)
    assert query["error"] == "redirect_uri_mismatch"
    assert query["state"] == "s"
    assert "code" not in query


@pytest.mark.parametrize(
    ("redirect_uri", "accepted"),
    [
        ("http://example.com/path", True),
        ("http://example.com/path/subdir/other", True),
        ("http://oauth.example.com/path", True),
        ("http://example.com/bar", False),
        ("http://example.com/", False),
        ("http://example.com:8080/path", False),
        ("http://oauth.example.com:8080/path", False),
        ("http://example.org", False),
        ("https://example.com/path", False),
    ],
)
def test_github_redirect_rules_remote_callback(redirect_uri, accepted):
    assert redirect_uri_matches("http://example.com/path", redirect_uri) is accepted


def test_github_exchange_redirect_mismatch(github_server, http):
    code = github_code(github_server, http)

    response = github_exchange(
        github_server, http, code, redirect_uri="http://127.0.0.1:1/callback"
    )

    assert response.json()["error"] == "redirect_uri_mismatch"


def test_github_unknown_client_authorize_404(github_server, http):
    response = authorize(http, github_server, client_id="Ov23nobody")

    assert response.status_code == 404


def github_refresh(server: GitHubServer, http: httpx.Client, token: str):
    return http.post(
        server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        },
        headers={"Accept": "application/json"},
    )


def test_github_expiring_tokens_fields(github_server, http):
    github_server.expiring_tokens = True

    body = github_tokens(github_server, http)

    assert body["expires_in"] == 28800
    assert body["refresh_token"].startswith("ghr_")
    assert body["refresh_token_expires_in"] == 15897600


def test_github_refresh_rotates(github_server, http):
    github_server.expiring_tokens = True
    old = github_tokens(github_server, http)["refresh_token"]

    first = github_refresh(github_server, http, old)
    reuse = github_refresh(github_server, http, old)

    new = first.json()["refresh_token"]
    assert new != old
    assert github_server.is_refresh_token_live(new)
    assert reuse.status_code == 200
    assert reuse.json()["error"] == "bad_refresh_token"


def test_github_classic_refresh_rejected(github_server, http):
    response = github_refresh(github_server, http, "ghr_unknown")

    assert response.json()["error"] == "bad_refresh_token"


def test_github_eleventh_token_revokes_oldest(github_server, http):
    tokens = [github_tokens(github_server, http)["access_token"] for _ in range(11)]

    assert not github_server.is_access_token_live(tokens[0])
    assert all(github_server.is_access_token_live(token) for token in tokens[1:])


def test_github_token_limit_counts_per_scope(github_server, http):
    first = github_tokens(github_server, http)["access_token"]
    for _ in range(10):
        code = github_code(github_server, http, scope="gist")
        github_exchange(github_server, http, code)

    assert github_server.is_access_token_live(first)


def github_device(server: GitHubServer, http: httpx.Client, accept: str | None = None):
    headers = {"Accept": accept} if accept else {}
    return http.post(
        server.device_authorization_url,
        data={"client_id": server.client_id, "scope": "repo"},
        headers=headers,
    )


def github_poll(server: GitHubServer, http: httpx.Client, device_code: str):
    return http.post(
        server.token_url,
        data={
            "client_id": server.client_id,
            "device_code": device_code,
            "grant_type": DEVICE_CODE_GRANT_TYPE,
        },
        headers={"Accept": "application/json"},
    )


def test_github_device_code_form_encoded_by_default(github_server, http):
    response = github_device(github_server, http)

    fields = dict(urllib.parse.parse_qsl(response.text))
    assert response.headers["content-type"].startswith(
        "application/x-www-form-urlencoded"
    )
    assert fields["verification_uri"] == github_server.verification_uri
    assert fields["expires_in"] == "900"
    assert fields["interval"] == "5"
    assert len(fields["user_code"]) == 9


def test_github_device_flow_without_secret(github_server, http):
    device = github_device(github_server, http, "application/json").json()

    pending = github_poll(github_server, http, device["device_code"])
    github_server.approve_device(device["user_code"])
    granted = github_poll(github_server, http, device["device_code"])

    assert pending.status_code == 200
    assert pending.json()["error"] == "authorization_pending"
    assert granted.json()["scope"] == "repo"
    assert github_server.is_access_token_live(granted.json()["access_token"])


def test_github_device_slow_down_includes_interval(github_server, http):
    device = github_device(github_server, http, "application/json").json()

    github_poll(github_server, http, device["device_code"])
    fast = github_poll(github_server, http, device["device_code"])

    assert fast.json()["error"] == "slow_down"
    assert fast.json()["interval"] == 10


def test_github_device_denied(github_server, http):
    device = github_device(github_server, http, "application/json").json()
    github_server.deny_device(device["user_code"])

    response = github_poll(github_server, http, device["device_code"])

    assert response.json()["error"] == "access_denied"


def test_github_device_expired(github_server, http):
    device = github_device(github_server, http, "application/json").json()
    github_server.expire_device(device["user_code"])

    response = github_poll(github_server, http, device["device_code"])

    assert response.json()["error"] == "expired_token"


def test_github_device_unknown_code(github_server, http):
    response = github_poll(github_server, http, "nope")

    assert response.json()["error"] == "incorrect_device_code"


def test_github_device_flow_disabled(github_server, http):
    github_server.device_flow_enabled = False

    response = github_device(github_server, http, "application/json")

    assert response.json()["error"] == "device_flow_disabled"


def test_github_revoke_returns_204(github_server, http):
    access = github_tokens(github_server, http)["access_token"]

    response = http.request(
        "DELETE",
        github_server.revoke_url,
        json={"access_token": access},
        auth=(github_server.client_id, github_server.client_secret),
    )

    assert response.status_code == 204
    assert github_server.revoked_tokens == [access]
    assert not github_server.is_access_token_live(access)


def test_github_revoke_wrong_credentials_404(github_server, http):
    access = github_tokens(github_server, http)["access_token"]

    response = http.request(
        "DELETE",
        github_server.revoke_url,
        json={"access_token": access},
        auth=(github_server.client_id, "wrong"),
    )

    assert response.status_code == 404
    assert github_server.is_access_token_live(access)


def test_github_revoke_missing_token_422(github_server, http):
    response = http.request(
        "DELETE",
        github_server.revoke_url,
        json={},
        auth=(github_server.client_id, github_server.client_secret),
    )

    assert response.status_code == 422


def test_github_injected_error_follows_accept(github_server, http):
    github_server.fail_next(error="temporarily_unavailable")

    response = github_exchange(github_server, http, "x", accept=None)

    assert response.status_code == 200
    assert (
        dict(urllib.parse.parse_qsl(response.text))["error"]
        == "temporarily_unavailable"
    )


# ---------------------------------------------------------------------------
# Notion
# ---------------------------------------------------------------------------


def notion_code(server: NotionServer, http: httpx.Client, **extra: str) -> str:
    params = {"client_id": server.client_id, "response_type": "code", "owner": "user"}
    params.update(extra)
    return code_from(authorize(http, server, **params))


def notion_post(
    server: NotionServer, http: httpx.Client, url: str, body: dict[str, Any]
) -> httpx.Response:
    return http.post(url, json=body, auth=(server.client_id, server.client_secret))


def notion_tokens(server: NotionServer, http: httpx.Client) -> dict[str, Any]:
    code = notion_code(server, http)
    response = notion_post(
        server,
        http,
        server.token_url,
        {"grant_type": "authorization_code", "code": code},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_notion_authorize_requires_owner_user(notion_server, http):
    missing = authorize(
        http, notion_server, client_id=notion_server.client_id, response_type="code"
    )
    workspace = authorize(
        http,
        notion_server,
        client_id=notion_server.client_id,
        response_type="code",
        owner="workspace",
    )

    assert missing.status_code == 400
    assert workspace.status_code == 400


def test_notion_authorize_single_redirect_default(notion_server, http):
    response = authorize(
        http,
        notion_server,
        client_id=notion_server.client_id,
        response_type="code",
        owner="user",
        state="s",
    )

    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert query_of(response.headers["location"])["state"] == "s"


def test_notion_token_response_fields(notion_server, http):
    body = notion_tokens(notion_server, http)

    assert "expires_in" not in body
    assert body["token_type"] == "bearer"
    assert body["bot_id"] == notion_server.bot_id
    assert body["workspace_id"] == notion_server.workspace_id
    assert body["workspace_name"] == notion_server.workspace_name
    assert body["owner"]["type"] == "user"
    assert notion_server.is_access_token_live(body["access_token"])
    assert notion_server.is_refresh_token_live(body["refresh_token"])


def test_notion_token_form_body_rejected(notion_server, http):
    code = notion_code(notion_server, http)

    response = http.post(
        notion_server.token_url,
        data={"grant_type": "authorization_code", "code": code},
        auth=(notion_server.client_id, notion_server.client_secret),
    )

    assert response.status_code == 400
    body = response.json()
    assert body["object"] == "error"
    assert body["status"] == 400
    assert body["code"] == "invalid_request"
    assert body["message"]


def test_notion_token_without_basic_rejected(notion_server, http):
    code = notion_code(notion_server, http)

    response = http.post(
        notion_server.token_url,
        json={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": notion_server.client_id,
            "client_secret": notion_server.client_secret,
        },
    )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_notion_token_invalid_json_rejected(notion_server, http):
    response = http.post(
        notion_server.token_url,
        content=b"{not json",
        headers={
            "Content-Type": "application/json",
            "Authorization": basic_header(
                notion_server.client_id, notion_server.client_secret
            ),
        },
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_notion_refresh_rotates(notion_server, http):
    old = notion_tokens(notion_server, http)["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": old}

    first = notion_post(notion_server, http, notion_server.token_url, body)
    reuse = notion_post(notion_server, http, notion_server.token_url, body)

    assert first.status_code == 200
    assert first.json()["refresh_token"] != old
    assert "expires_in" not in first.json()
    assert reuse.status_code == 400
    assert reuse.json()["code"] == "invalid_grant"


def test_notion_ignores_pkce_parameters(notion_server, http):
    _, challenge = new_pkce_pair()
    code = notion_code(
        notion_server, http, code_challenge=challenge, code_challenge_method="S256"
    )

    response = notion_post(
        notion_server,
        http,
        notion_server.token_url,
        {"grant_type": "authorization_code", "code": code},
    )

    assert response.status_code == 200


def test_notion_redirect_not_allowed_when_implicit(notion_server, http):
    code = notion_code(notion_server, http)

    response = notion_post(
        notion_server,
        http,
        notion_server.token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_notion_redirect_required_when_sent(notion_server, http):
    with_redirect = notion_code(notion_server, http, redirect_uri=REDIRECT_URI)
    missing = notion_code(notion_server, http, redirect_uri=REDIRECT_URI)

    ok = notion_post(
        notion_server,
        http,
        notion_server.token_url,
        {
            "grant_type": "authorization_code",
            "code": with_redirect,
            "redirect_uri": REDIRECT_URI,
        },
    )
    rejected = notion_post(
        notion_server,
        http,
        notion_server.token_url,
        {"grant_type": "authorization_code", "code": missing},
    )

    assert ok.status_code == 200
    assert rejected.status_code == 400
    assert rejected.json()["code"] == "invalid_grant"


def test_notion_revoke_json_basic(notion_server, http):
    tokens = notion_tokens(notion_server, http)

    response = notion_post(
        notion_server, http, notion_server.revoke_url, {"token": tokens["access_token"]}
    )

    assert response.status_code == 200
    assert notion_server.revoked_tokens == [tokens["access_token"]]
    assert not notion_server.is_access_token_live(tokens["access_token"])
    assert not notion_server.is_refresh_token_live(tokens["refresh_token"])


def test_notion_revoke_form_body_rejected(notion_server, http):
    tokens = notion_tokens(notion_server, http)

    response = http.post(
        notion_server.revoke_url,
        data={"token": tokens["access_token"]},
        auth=(notion_server.client_id, notion_server.client_secret),
    )

    assert response.status_code == 400
    assert notion_server.is_access_token_live(tokens["access_token"])


def test_notion_introspect_reports_activity(notion_server, http):
    tokens = notion_tokens(notion_server, http)
    body = {"token": tokens["access_token"]}

    before = notion_post(notion_server, http, notion_server.introspect_url, body).json()
    notion_post(notion_server, http, notion_server.revoke_url, body)
    after = notion_post(notion_server, http, notion_server.introspect_url, body).json()

    assert before["active"] is True
    assert isinstance(before["iat"], int)
    assert after["active"] is False


def test_notion_rate_limited_retry_after(notion_server, http):
    notion_server.fail_next(429, retry_after=4)

    response = notion_post(notion_server, http, notion_server.token_url, {})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
    assert response.json()["code"] == "rate_limited"


def test_notion_oauth_error_style(notion_server, http):
    notion_server.error_style = "oauth"

    response = notion_post(
        notion_server,
        http,
        notion_server.token_url,
        {"grant_type": "authorization_code", "code": "unknown"},
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid code.",
    }


def test_notion_version_header_knob(notion_server, http):
    notion_server.require_version_header = True
    code = notion_code(notion_server, http)
    body = {"grant_type": "authorization_code", "code": code}

    without = notion_post(notion_server, http, notion_server.token_url, body)
    with_header = http.post(
        notion_server.token_url,
        json=body,
        auth=(notion_server.client_id, notion_server.client_secret),
        headers={"Notion-Version": "2022-06-28"},
    )

    assert without.json()["code"] == "missing_version"
    assert with_header.status_code == 200


def test_notion_has_no_device_flow(notion_server, http):
    response = http.post(notion_server.url("/v1/oauth/device/code"))

    assert notion_server.device_authorization_url is None
    assert response.status_code == 404
