"""Many jobs, one token: single-flight refresh, crash safety, refresh on 401."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.auth_helpers import UnreadableInput, expire_saved_token, idp_config
from support.idp import IdentityProvider
from support.resource_server import ResourceServer
from video_processor.auth import KNOWN_CONFIGS, AuthConfig, OAuthManager, _clock
from video_processor.auth.console import Console
from video_processor.auth.httpx_auth import OAuthManagerAuth
from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken

SUPPORT = Path(__file__).parent / "support"
WORKERS = 16


def _config_file(tmp_path: Path, config: AuthConfig) -> Path:
    fields = {
        key: getattr(config, key)
        for key in (
            "service",
            "oauth_authorize_url",
            "oauth_token_url",
            "client_id",
            "client_secret",
            "scopes",
            "redirect_uri",
            "account_id",
            "token_endpoint_auth_method",
            "client_credentials_grant",
        )
    }
    fields["token_path"] = str(config.resolved_token_path)
    path = tmp_path / "worker-config.json"
    path.write_text(json.dumps(fields))
    return path


def _run_workers(tmp_path: Path, config: AuthConfig) -> list[dict[str, Any]]:
    config_path = _config_file(tmp_path, config)
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(SUPPORT / "token_worker.py"),
                str(config_path),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]
    time.sleep(1.0)  # let every worker import and reach its wait loop
    start.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=90)
        assert out, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _signed_in(idp: IdentityProvider, client_id: str, **fields: Any) -> OAuthManager:
    config = idp_config(idp, client_id, **fields)
    console = Console(stdin=UnreadableInput(), stderr=io.StringIO())
    manager = OAuthManager(config, interactive=True, console=console)
    assert manager.authenticate().success
    return manager


def test_sixteen_processes_refresh_once(
    idp: IdentityProvider, browser_env, tmp_path: Path
) -> None:
    manager = _signed_in(idp, "confidential-app")
    old = expire_saved_token(manager.config.resolved_token_path)
    idp.reset_stats()

    results = _run_workers(tmp_path, manager.config)

    assert all(r["success"] for r in results), [r["error"] for r in results]
    assert idp.stats()["token_requests"].get("refresh_token") == 1
    tokens = {r["access_token"] for r in results}
    assert len(tokens) == 1
    assert tokens != {old["access_token"]}
    saved = json.loads(manager.config.resolved_token_path.read_text())
    assert saved["access_token"] in tokens
    assert saved["refresh_token"] != old["refresh_token"]
    assert idp.introspect(saved["refresh_token"])["active"] is True


def test_sixteen_processes_fetch_one_client_credentials_token(
    idp: IdentityProvider, tmp_path: Path
) -> None:
    config = idp_config(
        idp,
        "service-app",
        account_id="any",
        client_credentials_grant="client_credentials",
        scopes=["read"],
    )
    idp.reset_stats()
    results = _run_workers(tmp_path, config)
    assert all(r["success"] for r in results), [r["error"] for r in results]
    assert idp.stats()["token_requests"].get("client_credentials") == 1
    assert len({r["access_token"] for r in results}) == 1
    assert {r["method"] for r in results} <= {"client_credentials", "saved_token"}


def test_killed_writer_never_leaves_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "svc_token.json"
    rng = random.Random(20261204)
    for _ in range(250):
        writer = subprocess.Popen(
            [sys.executable, str(SUPPORT / "token_writer.py"), str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(rng.uniform(0, 0.02))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        token = StoredToken.from_json(json.loads(path.read_bytes()))
        assert token.access_token.startswith("token-")
        assert token.access_token.endswith("x" * 4096)
        counter = token.access_token.split("-")[1]
        assert token.refresh_token == f"refresh-{counter}"


def test_lock_of_killed_process_does_not_block(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _signed_in(idp, "confidential-app")
    path = manager.config.resolved_token_path
    expire_saved_token(path)
    holder = subprocess.Popen(
        [sys.executable, str(SUPPORT / "lock_holder.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()

    started = time.monotonic()
    result = OAuthManager(
        manager.config, interactive=False, lock_timeout=5
    ).authenticate()
    assert result.success, result.error
    assert time.monotonic() - started < 5


def test_lock_held_too_long_fails_with_clear_error(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _signed_in(idp, "confidential-app")
    path = manager.config.resolved_token_path
    expire_saved_token(path)
    holder = subprocess.Popen(
        [sys.executable, str(SUPPORT / "lock_holder.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = OAuthManager(
            manager.config, interactive=False, lock_timeout=1
        ).authenticate()
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert not result.success
    assert "Timed out after 1 s waiting for the lock" in result.error
    assert elapsed < 10


def test_token_inside_margin_is_refreshed_before_use(
    idp: IdentityProvider, browser_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _signed_in(idp, "confidential-app")
    first = json.loads(manager.config.resolved_token_path.read_text())
    real_expiry = first["expires_at"] + 60
    idp.reset_stats()
    # 59 s before the real expiry: inside the 60 s margin.
    monkeypatch.setattr(_clock, "now", lambda: real_expiry - 59)
    result = OAuthManager(manager.config, interactive=False).authenticate()
    assert result.success
    assert result.access_token != first["access_token"]
    assert idp.stats()["token_requests"].get("refresh_token") == 1


def test_short_lived_token_reused(idp_factory, browser_env) -> None:
    server = idp_factory(accessTokenTtl=30)
    manager = _signed_in(server, "confidential-app")
    server.reset_stats()
    for _ in range(5):
        assert OAuthManager(manager.config, interactive=False).get_token()
    assert server.stats()["token_requests"].get("refresh_token") is None


def test_401_refreshes_once_and_retries_once(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _signed_in(idp, "confidential-app")
    stale = json.loads(manager.config.resolved_token_path.read_text())["access_token"]
    revoked = idp.post_as_client(
        idp.revocation_endpoint, "confidential-app", {"token": stale}
    )
    assert revoked.status_code == 200
    idp.reset_stats()

    def active(token: str) -> bool:
        return bool(idp.introspect(token)["active"])

    auth = OAuthManagerAuth(manager)
    with ResourceServer(active) as api, httpx.Client(auth=auth, timeout=10) as client:
        response = client.get(api.url)
    assert response.status_code == 200
    assert len(api.seen_tokens) == 2
    assert api.seen_tokens[0] == stale
    assert api.seen_tokens[1] != stale
    assert idp.stats()["token_requests"].get("refresh_token") == 1


def test_401_twice_is_returned_after_one_retry(
    idp: IdentityProvider, browser_env
) -> None:
    manager = _signed_in(idp, "confidential-app")
    idp.reset_stats()
    auth = OAuthManagerAuth(manager)
    rejecting = ResourceServer(lambda token: False)
    with rejecting as api, httpx.Client(auth=auth, timeout=10) as client:
        response = client.get(api.url)
    assert response.status_code == 401
    assert len(api.seen_tokens) == 2
    assert idp.stats()["token_requests"].get("refresh_token") == 1


def test_second_process_adopts_token_after_invalidate(
    idp: IdentityProvider, browser_env
) -> None:
    first = _signed_in(idp, "confidential-app")
    stale = first.get_token()
    second = OAuthManager(first.config, interactive=False)
    assert second.get_token() == stale
    idp.reset_stats()

    first.invalidate(stale)
    renewed = first.get_token()
    second.invalidate(stale)
    adopted = second.get_token()

    assert renewed != stale
    assert adopted == renewed
    assert idp.stats()["token_requests"].get("refresh_token") == 1


def test_invalidated_token_without_refresh_token_is_not_reused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "classic_token.json"
    TokenStore(path).save(StoredToken(access_token="classic-token", expires_at=None))
    config = AuthConfig(service="classic", token_path=path, api_key_env="CLASSIC_KEY")
    manager = OAuthManager(config, interactive=False)
    assert manager.get_token() == "classic-token"
    manager.invalidate("classic-token")
    result = manager.authenticate()
    assert not result.success
    assert "the token was rejected and has no refresh token" in result.error


def test_hot_path_imports_no_http_library(tmp_path: Path) -> None:
    path = tmp_path / "hot_token.json"
    TokenStore(path).save(StoredToken(access_token="hot-token", expires_at=None))
    code = (
        "import sys; from video_processor.auth import AuthConfig, OAuthManager; "
        f"m = OAuthManager(AuthConfig(service='hot', token_path={str(path)!r})); "
        "assert m.get_token() == 'hot-token'; assert m.get_token() == 'hot-token'; "
        "print(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('httpx', 'authlib', 'filelock', 'click')))"
    )
    env = {**os.environ}
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("age", [600, 10])
def test_stale_temporary_files_are_removed(tmp_path: Path, age: int) -> None:
    path = tmp_path / "svc_token.json"
    leftover = tmp_path / ".svc_token.json.abc123.tmp"
    leftover.write_text("partial")
    old = time.time() - age
    os.utime(leftover, (old, old))
    TokenStore(path).save(StoredToken(access_token="a"))
    assert leftover.exists() is (age < 300)


def test_rejected_refresh_adopts_newer_token_written_meanwhile(zoom_server) -> None:
    config = dataclasses.replace(
        KNOWN_CONFIGS["zoom"],
        oauth_authorize_url=zoom_server.authorize_url,
        oauth_token_url=zoom_server.token_url,
        client_id=zoom_server.client_id,
        client_secret=zoom_server.client_secret,
    )
    store = TokenStore(config.resolved_token_path)
    store.save(
        StoredToken(
            access_token="expired-access",
            refresh_token="retired-refresh",
            expires_at=1.0,
            client_id=zoom_server.client_id,
        )
    )
    zoom_server.delay_next(1.0)
    newer = StoredToken(
        access_token="written-by-another-process",
        refresh_token="newest-refresh",
        expires_at=time.time() + 3600,
    )
    writer = threading.Timer(0.3, lambda: TokenStore(store.path).save(newer))
    writer.start()
    result = OAuthManager(config, interactive=False).authenticate()
    writer.join()
    assert result.success, result.error
    assert result.access_token == "written-by-another-process"
    assert len(zoom_server.token_requests) == 1
    saved = json.loads(store.path.read_text())
    assert saved["refresh_token"] == "newest-refresh"


def test_lock_timeout_is_waited_once(idp: IdentityProvider, browser_env) -> None:
    manager = _signed_in(idp, "confidential-app")
    path = manager.config.resolved_token_path
    expire_saved_token(path)
    config = dataclasses.replace(
        manager.config, account_id="acct", client_credentials_grant="client_credentials"
    )
    with subprocess.Popen(
        [sys.executable, str(SUPPORT / "lock_holder.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        console = Console(stdin=UnreadableInput(), stderr=io.StringIO())
        result = OAuthManager(
            config, interactive=True, console=console, lock_timeout=2
        ).authenticate()
        elapsed = time.monotonic() - started
        holder.kill()
    assert not result.success
    assert elapsed < 3.5
    assert "client credentials: skipped because another process holds the lock" in (
        result.error
    )
    assert "interactive sign-in: skipped to keep the saved sign-in" in result.error
    assert len(browser_env.runs) == 1


def test_eight_threads_refresh_once(idp: IdentityProvider, browser_env) -> None:
    manager = _signed_in(idp, "confidential-app")
    expire_saved_token(manager.config.resolved_token_path)
    idp.reset_stats()
    barrier = threading.Barrier(8)
    tokens: list[str | None] = []

    def job() -> None:
        worker = OAuthManager(manager.config, interactive=False)
        barrier.wait()
        tokens.append(worker.get_token())

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(tokens) == 8
    assert None not in tokens
    assert len(set(tokens)) == 1
    assert idp.stats()["token_requests"].get("refresh_token") == 1
