"""Every flow at DEBUG: no secret in logs, console output, errors or reprs."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import threading
import time
from pathlib import Path

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
from video_processor.auth import AuthConfig, OAuthManager
from video_processor.auth.console import Console
from video_processor.auth.errors import AuthError


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
    """Collect all text the product produced: logs, streams, console, reprs."""
    caplog.set_level(logging.DEBUG)
    pieces: list[str] = []

    def collect(*extra: object) -> str:
        captured = capsys.readouterr()
        texts = [caplog.text, captured.out, captured.err]
        texts.extend(item if isinstance(item, str) else repr(item) for item in extra)
        pieces.extend(texts)
        return "\n".join(pieces)

    return collect


def _console(stdin=None) -> Console:
    return Console(stdin=stdin or UnreadableInput(), stderr=io.StringIO())


def test_code_flows_refresh_and_revoke_leak_nothing(
    idp: IdentityProvider, browser_env, everything
) -> None:
    confidential = idp.clients["confidential-app"]
    loopback = idp_config(idp, "confidential-app")
    console = _console()
    signed_in = OAuthManager(loopback, interactive=True, console=console).authenticate()
    code = query_of(browser_env.final_url)["code"]
    authorize_url = browser_env.last_run["url"]

    pasted_config = dataclasses.replace(
        idp_config(idp, "post-app", redirect_uri=PRIVATE_USE_REDIRECT_URI),
        service="pasted",
    )
    paste_console = _console(TypedInput(lambda: browser_env.final_url))
    pasted = OAuthManager(
        pasted_config, interactive=True, console=paste_console
    ).authenticate()
    pasted_code = query_of(browser_env.final_url)["code"]

    expire_saved_token(loopback.resolved_token_path)
    refreshed = OAuthManager(loopback, interactive=False).authenticate()
    OAuthManager(loopback).clear_token(revoke=True)

    text = everything(
        console.stderr.getvalue(),
        paste_console.stderr.getvalue(),
        signed_in,
        pasted,
        refreshed,
        loopback,
        pasted_config,
    )
    assert signed_in.success
    assert pasted.success
    assert refreshed.success
    assert_no_secret(
        text,
        [
            confidential.client_secret,
            idp.clients["post-app"].client_secret,
            signed_in.access_token,
            signed_in.refresh_token,
            pasted.access_token,
            pasted.refresh_token,
            refreshed.access_token,
            refreshed.refresh_token,
            code,
            pasted_code,
        ],
    )
    # The authorization URL is shown to the person, but carries no secret.
    assert "code_challenge=" in authorize_url
    assert "code_verifier" not in authorize_url


def test_device_and_client_credentials_leak_nothing(
    idp: IdentityProvider, everything
) -> None:
    stderr = io.StringIO()
    device_config = idp_config(idp, "device-app")
    manager = OAuthManager(
        device_config,
        interactive=True,
        device=True,
        console=Console(stdin=UnreadableInput(), stderr=stderr, open_browser=None),
    )

    def approve() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = re.search(r"enter the code:\s+(\S+)", stderr.getvalue())
            if match:
                idp.approve_device(match.group(1))
                return
            time.sleep(0.05)

    approver = threading.Thread(target=approve, daemon=True)
    approver.start()
    device = manager.authenticate()
    approver.join(5)

    service_config = dataclasses.replace(
        idp_config(
            idp,
            "service-app",
            account_id="acct",
            client_credentials_grant="client_credentials",
            scopes=["read"],
        ),
        service="s2s",
    )
    service = OAuthManager(service_config, interactive=False).authenticate()

    text = everything(stderr.getvalue(), device, service, device_config, service_config)
    assert device.success
    assert service.success
    assert_no_secret(
        text,
        [
            idp.clients["device-app"].client_secret,
            idp.clients["service-app"].client_secret,
            device.access_token,
            device.refresh_token,
            service.access_token,
        ],
    )


def test_failures_leak_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, everything
) -> None:
    monkeypatch.setenv("LEAK_API_KEY", "api-key-planted-secret-value")
    bad_endpoint = AuthConfig(
        service="leak",
        oauth_authorize_url="https://auth.invalid/authorize",
        oauth_token_url="http://auth.invalid/token",
        client_id="leak-client",
        client_secret="client-secret-planted-value",
        account_id="acct",
        token_path=tmp_path / "leak.json",
        revocation_url="http://127.0.0.1:9/revoke",
    )
    failed = OAuthManager(bad_endpoint, interactive=False).authenticate()
    from video_processor.auth.store import TokenStore
    from video_processor.auth.token import StoredToken

    TokenStore(bad_endpoint.resolved_token_path).save(
        StoredToken(
            access_token="access-planted-secret-value",
            refresh_token="refresh-planted-secret-value",
            client_id="leak-client",
        )
    )
    with pytest.raises(AuthError) as raised:
        OAuthManager(bad_endpoint, http_timeout=1).clear_token(revoke=True)
    key_config = AuthConfig(service="leakkey", api_key_env="LEAK_API_KEY")
    keyed = OAuthManager(key_config, interactive=False).authenticate()

    text = everything(failed, str(raised.value), keyed, bad_endpoint, failed.error)
    assert not failed.success
    assert keyed.success
    assert_no_secret(
        text,
        [
            "client-secret-planted-value",
            "access-planted-secret-value",
            "refresh-planted-secret-value",
            "api-key-planted-secret-value",
        ],
    )
    assert "api-key-planted-secret-value" not in repr(keyed)
