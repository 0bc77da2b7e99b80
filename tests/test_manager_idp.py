"""The authentication chain against the real authorization server."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest

from support.auth_helpers import (
    TypedInput,
    UnreadableInput,
    expire_saved_token,
    idp_config,
    query_of,
)
from support.idp import PRIVATE_USE_REDIRECT_URI, IdentityProvider
from support.secrets_check import assert_no_secret
from video_processor.auth import KNOWN_CONFIGS, AuthConfig, OAuthManager
from video_processor.auth.console import Console


def _manager(
    config: AuthConfig, *, stdin: io.TextIOBase | None = None, **kwargs
) -> OAuthManager:
    console = Console(stdin=stdin or UnreadableInput(), stderr=io.StringIO())
    kwargs.setdefault("interactive", True)
    return OAuthManager(config, console=console, **kwargs)


def _console_text(manager: OAuthManager) -> str:
    return manager._console.stderr.getvalue()  # type: ignore[union-attr]


@pytest.mark.parametrize("client_id", ["confidential-app", "public-app", "post-app"])
def test_loopback_sign_in_with_each_client(
    idp: IdentityProvider, browser_env, client_id: str
) -> None:
    manager = _manager(idp_config(idp, client_id))
    result = manager.authenticate()
    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert result.refresh_token
    assert browser_env.listener_status == 200
    assert "close this window" in browser_env.listener_body
    assert idp.introspect(result.access_token)["active"] is True
    saved = json.loads(manager.config.resolved_token_path.read_text())
    assert saved["access_token"] == result.access_token
    assert saved["client_id"] == client_id
    assert saved["method"] == "oauth_pkce"


def test_authorization_url_carries_pkce_and_state(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _manager(idp_config(idp, "public-app"))
    assert manager.authenticate().success
    params = query_of(browser_env.last_run["url"])
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32
    assert params["scope"] == "openid offline_access read"
    assert params["prompt"] == "consent"
    assert params["redirect_uri"].startswith("http://127.0.0.1:")
    assert params["redirect_uri"].endswith("/callback")


def test_localhost_redirect_uri_gets_free_port(
    idp: IdentityProvider, browser_env
) -> None:
    config = idp_config(idp, "public-app", redirect_uri="http://localhost/callback")
    assert _manager(config).authenticate().success
    redirect = query_of(browser_env.last_run["url"])["redirect_uri"]
    assert redirect.startswith("http://localhost:")
    assert redirect != "http://localhost/callback"


def test_wrong_client_authentication_is_rejected(
    idp: IdentityProvider, browser_env
) -> None:
    config = idp_config(
        idp, "post-app", token_endpoint_auth_method="client_secret_basic"
    )
    result = _manager(config).authenticate()
    assert not result.success
    assert "sign-in rejected by the service (invalid_client" in result.error


def test_paste_flow_accepts_bare_code(idp: IdentityProvider, browser_env) -> None:
    config = idp_config(idp, "confidential-app", redirect_uri=PRIVATE_USE_REDIRECT_URI)
    typed = TypedInput(lambda: query_of(browser_env.final_url)["code"])
    manager = _manager(config, stdin=typed)
    result = manager.authenticate()
    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert typed.reads == 1
    assert "Paste the authorization code" in _console_text(manager)


def test_paste_flow_accepts_redirected_url(idp: IdentityProvider, browser_env) -> None:
    config = idp_config(idp, "confidential-app", redirect_uri=PRIVATE_USE_REDIRECT_URI)
    manager = _manager(config, stdin=TypedInput(lambda: browser_env.final_url))
    result = manager.authenticate()
    assert result.success, result.error


def test_paste_flow_rejects_url_with_wrong_state(
    idp: IdentityProvider, browser_env
) -> None:
    config = idp_config(idp, "confidential-app", redirect_uri=PRIVATE_USE_REDIRECT_URI)

    def forged() -> str:
        code = query_of(browser_env.final_url)["code"]
        return f"{PRIVATE_USE_REDIRECT_URI}?code={code}&state=forged"

    result = _manager(config, stdin=TypedInput(forged)).authenticate()
    assert not result.success
    assert "state does not match" in result.error


def test_paste_flow_end_of_input_cancels(idp: IdentityProvider, browser_env) -> None:
    config = idp_config(idp, "confidential-app", redirect_uri=PRIVATE_USE_REDIRECT_URI)
    result = _manager(config, stdin=TypedInput(lambda: None)).authenticate()
    assert not result.success
    assert "cancelled" in result.error


def test_denied_consent_reports_access_denied(
    idp: IdentityProvider, browser_env
) -> None:
    browser_env.set_action("deny")
    result = _manager(idp_config(idp, "public-app")).authenticate()
    assert not result.success
    assert "access_denied" in result.error
    assert browser_env.listener_status == 400
    assert "Sign-in failed" in browser_env.listener_body


def test_listener_timeout_fails_and_closes_socket(
    idp: IdentityProvider, browser_env
) -> None:
    browser_env.set_action("ignore")
    config = idp_config(idp, "public-app")
    manager = _manager(config, login_timeout=1)
    started = time.monotonic()
    result = manager.authenticate()
    assert not result.success
    assert "No authorization arrived within 1 s" in result.error
    assert time.monotonic() - started < 10
    port = int(
        query_of(browser_env.last_run["url"])["redirect_uri"]
        .split(":")[2]
        .split("/")[0]
    )
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_refresh_after_expiry_rotates_refresh_token(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _manager(idp_config(idp, "confidential-app"))
    first = manager.authenticate()
    assert first.success
    expire_saved_token(manager.config.resolved_token_path)

    batch = OAuthManager(manager.config, interactive=False)
    refreshed = batch.authenticate()
    assert refreshed.success, refreshed.error
    assert refreshed.method == "saved_token"
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token != first.refresh_token
    saved = json.loads(manager.config.resolved_token_path.read_text())
    assert saved["refresh_token"] == refreshed.refresh_token

    reused = idp.post_as_client(
        idp.token_endpoint,
        "confidential-app",
        {"grant_type": "refresh_token", "refresh_token": first.refresh_token},
    )
    assert reused.json()["error"] == "invalid_grant"


def test_refused_refresh_falls_through_to_api_key(
    idp: IdentityProvider, browser_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = idp_config(idp, "confidential-app", api_key_env="IDP_API_KEY")
    assert _manager(config).authenticate().success
    data = expire_saved_token(config.resolved_token_path)
    data["refresh_token"] = "no-such-refresh-token"
    config.resolved_token_path.write_text(json.dumps(data))

    failed = OAuthManager(config, interactive=False).authenticate()
    assert not failed.success
    assert (
        "saved token: token refresh rejected by the service (invalid_grant"
        in failed.error
    )
    assert "sign in again with `planopticon auth idp`" in failed.error
    assert "IDP_API_KEY is not set" in failed.error
    assert config.resolved_token_path.exists()

    monkeypatch.setenv("IDP_API_KEY", "key-from-environment")
    fallback = OAuthManager(config, interactive=False).authenticate()
    assert fallback.success
    assert fallback.method == "api_key"
    assert fallback.access_token == "key-from-environment"


def test_non_interactive_run_never_prompts(idp: IdentityProvider, browser_env) -> None:
    config = idp_config(idp, "confidential-app")
    manager = _manager(config, interactive=False)
    result = manager.authenticate()
    assert not result.success
    assert "skipped because interactive sign-in is off for this run" in result.error
    assert browser_env.runs == []
    assert _console_text(manager) == ""


@pytest.mark.parametrize(("setting", "expected"), [("0", False), ("1", True)])
def test_interactive_variable_overrides_terminal_check(
    idp: IdentityProvider,
    browser_env,
    monkeypatch: pytest.MonkeyPatch,
    setting,
    expected,
) -> None:
    monkeypatch.setenv("PLANOPTICON_INTERACTIVE", setting)
    console = Console(stdin=UnreadableInput(), stderr=io.StringIO())
    result = OAuthManager(idp_config(idp, "public-app"), console=console).authenticate()
    assert result.success is expected
    assert len(browser_env.runs) == (1 if expected else 0)


def test_interactive_argument_beats_variable(
    idp: IdentityProvider, browser_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANOPTICON_INTERACTIVE", "1")
    result = _manager(idp_config(idp, "public-app"), interactive=False).authenticate()
    assert not result.success
    assert browser_env.runs == []


def test_saved_token_is_returned_before_other_steps(
    idp: IdentityProvider, browser_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = idp_config(idp, "public-app", api_key_env="IDP_API_KEY")
    first = _manager(config).authenticate()
    monkeypatch.setenv("IDP_API_KEY", "key-from-environment")
    again = _manager(config).authenticate()
    assert again.method == "saved_token"
    assert again.access_token == first.access_token
    assert len(browser_env.runs) == 1


def test_interactive_sign_in_comes_before_api_key(
    idp: IdentityProvider, browser_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_API_KEY", "key-from-environment")
    config = idp_config(idp, "public-app", api_key_env="IDP_API_KEY")
    assert _manager(config).authenticate().method == "oauth_pkce"


def test_client_credentials_come_before_interactive_sign_in(
    idp: IdentityProvider, browser_env
) -> None:
    service = idp.clients["service-app"]
    config = idp_config(
        idp,
        "service-app",
        account_id="unused-by-the-standard-grant",
        client_credentials_grant="client_credentials",
        scopes=["read"],
    )
    result = _manager(config).authenticate()
    assert result.success, result.error
    assert result.method == "client_credentials"
    assert result.refresh_token is None
    assert browser_env.runs == []
    assert idp.introspect(result.access_token)["client_id"] == service.client_id


def test_plain_http_token_endpoint_is_refused(tmp_path: Path) -> None:
    config = AuthConfig(
        service="remote",
        oauth_authorize_url="https://auth.invalid/authorize",
        oauth_token_url="http://auth.invalid/token",
        client_id="id",
        client_secret="a-client-secret",
        account_id="acct",
    )
    result = OAuthManager(config, interactive=False).authenticate()
    assert not result.success
    assert "must use https" in result.error


def test_saved_file_is_private(idp: IdentityProvider, browser_env) -> None:
    manager = _manager(idp_config(idp, "public-app"))
    assert manager.authenticate().success
    path = manager.config.resolved_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_corrupt_file_set_aside_chain_continues(
    idp: IdentityProvider, browser_env
) -> None:
    config = idp_config(idp, "public-app")
    path = config.resolved_token_path
    path.parent.mkdir(parents=True)
    path.write_text("{ this is not json")
    result = _manager(config).authenticate()
    assert result.success
    aside = list(path.parent.glob("idp_token.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_text() == "{ this is not json"


def test_no_secret_in_logs_or_output(
    idp: IdentityProvider, browser_env, debug_log, capsys
) -> None:
    client = idp.clients["confidential-app"]
    manager = _manager(idp_config(idp, "confidential-app"))
    first = manager.authenticate()
    expire_saved_token(manager.config.resolved_token_path)
    second = OAuthManager(manager.config, interactive=False).authenticate()
    assert second.success
    captured = capsys.readouterr()
    text = "\n".join(
        [
            debug_log.text,
            captured.out,
            captured.err,
            _console_text(manager),
            repr(first),
            repr(second),
            repr(manager.config),
        ]
    )
    auth_url_params = query_of(browser_env.last_run["url"])
    assert_no_secret(
        text,
        [
            client.client_secret,
            first.access_token,
            first.refresh_token,
            second.access_token,
            second.refresh_token,
        ],
    )
    assert auth_url_params["state"] not in debug_log.text
    assert any(record.levelname == "DEBUG" for record in debug_log.records)


def test_listener_ignores_stray_requests() -> None:
    from video_processor.auth.loopback import RedirectListener

    with RedirectListener("http://127.0.0.1/callback", "expected-state") as listener:
        base = listener.redirect_uri.rsplit("/", 1)[0]
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{base}/favicon.ico").status_code == 404
            assert client.get(f"{base}/callback?code=c&state=wrong").status_code == 404
            assert client.get(f"{base}/callback?code=c").status_code == 404
            assert (
                client.get(f"{base}/other?code=c&state=expected-state").status_code
                == 404
            )
            assert listener.wait(0.1) is None
            accepted = client.get(f"{base}/callback?code=good&state=expected-state")
            assert accepted.status_code == 200
            again = client.get(f"{base}/callback?code=again&state=expected-state")
            assert again.status_code == 404
        callback = listener.wait(1)
        assert callback is not None
        assert callback.params["code"] == "good"


def test_really_expired_token_is_refreshed(idp_factory, browser_env) -> None:
    server = idp_factory(accessTokenTtl=2)
    manager = _manager(idp_config(server, "confidential-app"))
    first = manager.authenticate()
    assert first.success
    time.sleep(2.5)
    assert server.introspect(first.access_token)["active"] is False
    server.reset_stats()
    again = OAuthManager(manager.config, interactive=False).authenticate()
    assert again.success, again.error
    assert again.access_token != first.access_token
    assert server.introspect(again.access_token)["active"] is True
    assert server.stats()["token_requests"].get("refresh_token") == 1


def test_pkce_verifier_never_logged(
    zoom_server, browser_env, debug_log, capsys
) -> None:
    config = dataclasses.replace(
        KNOWN_CONFIGS["zoom"],
        oauth_authorize_url=zoom_server.authorize_url,
        oauth_token_url=zoom_server.token_url,
        client_id=zoom_server.client_id,
        client_secret=zoom_server.client_secret,
    )
    manager = _manager(config)
    assert manager.authenticate().success
    exchange = zoom_server.token_requests[-1].form_params
    verifier = exchange["code_verifier"]
    code = exchange["code"]
    captured = capsys.readouterr()
    text = "\n".join(
        [debug_log.text, captured.out, captured.err, _console_text(manager)]
    )
    assert_no_secret(text, [verifier, code, zoom_server.client_secret])
