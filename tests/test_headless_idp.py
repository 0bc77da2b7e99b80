"""Headless sign-in and sign-out against the real authorization server:
the device flow, revocation, --no-browser and the listener/paste race."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
from click.testing import CliRunner

from support.auth_helpers import (
    UnreadableInput,
    expire_saved_token,
    idp_config,
    idp_service_table,
    query_of,
    write_service_table,
)
from support.idp import PRIVATE_USE_REDIRECT_URI, IdentityProvider
from video_processor.auth import AuthConfig, OAuthManager, _clock
from video_processor.auth.console import Console
from video_processor.auth.errors import RevocationError
from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken
from video_processor.cli.main import cli

FAKE_BROWSER = Path(__file__).parent / "support" / "fake_browser.py"
USER_CODE = re.compile(r"enter the code:\s+(\S+)")
AUTHORIZE_URL = re.compile(r"http://127\.0\.0\.1:\d+/auth\?\S+")


def _wait_for(predicate: Callable[[], Optional[str]], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the product")


class _Approver(threading.Thread):
    """Approve (or deny) the device sign-in once its user code is shown."""

    def __init__(
        self, idp: IdentityProvider, console: io.StringIO, *, deny: bool = False
    ):
        super().__init__(daemon=True)
        self.idp, self.console, self.deny = idp, console, deny
        self.user_code: Optional[str] = None

    def run(self) -> None:
        def code() -> Optional[str]:
            match = USER_CODE.search(self.console.getvalue())
            return match.group(1) if match else None

        self.user_code = _wait_for(code)
        self.idp.approve_device(self.user_code, deny=self.deny)


def _device_manager(config: AuthConfig, **kwargs) -> tuple[OAuthManager, io.StringIO]:
    stderr = io.StringIO()
    console = Console(stdin=UnreadableInput(), stderr=stderr, open_browser=None)
    kwargs.setdefault("device", True)
    return OAuthManager(config, interactive=True, console=console, **kwargs), stderr


@pytest.mark.parametrize("client_id", ["public-app", "device-app"])
def test_device_flow_signs_in(idp: IdentityProvider, client_id: str) -> None:
    manager, stderr = _device_manager(idp_config(idp, client_id))
    approver = _Approver(idp, stderr)
    approver.start()
    result = manager.authenticate()
    approver.join(5)
    assert result.success, result.error
    assert result.method == "device_code"
    assert result.refresh_token
    instructions = stderr.getvalue()
    assert f"enter the code:  {approver.user_code}" in instructions
    assert idp.issuer + "/device" in instructions
    saved = json.loads(manager.config.resolved_token_path.read_text())
    assert saved["method"] == "device_code"
    assert idp.introspect(result.access_token)["active"] is True


def test_device_flow_token_refreshes_later(idp: IdentityProvider) -> None:
    manager, stderr = _device_manager(idp_config(idp, "public-app"))
    _Approver(idp, stderr).start()
    first = manager.authenticate()
    expire_saved_token(manager.config.resolved_token_path)
    again = OAuthManager(manager.config, interactive=False).authenticate()
    assert again.success
    assert again.access_token != first.access_token
    status = json.loads(manager.config.resolved_token_path.read_text())
    assert status["method"] == "device_code"


def test_device_flow_denied(idp: IdentityProvider) -> None:
    manager, stderr = _device_manager(idp_config(idp, "public-app"))
    _Approver(idp, stderr, deny=True).start()
    result = manager.authenticate()
    assert not result.success
    assert "the sign-in was denied on the verification page" in result.error


def test_device_flow_expires(idp_factory) -> None:
    server = idp_factory(deviceCodeTtl=2)
    manager, _ = _device_manager(idp_config(server, "public-app"))
    started = time.monotonic()
    result = manager.authenticate()
    assert not result.success
    assert "the device code expired" in result.error
    assert "Run the sign-in again." in result.error
    assert time.monotonic() - started < 10


def test_device_flow_polls_at_interval(
    idp_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = idp_factory(deviceInterval=1, enforceSlowDown=True)
    sleeps: list[float] = []
    real_sleep = _clock.sleep

    def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(_clock, "sleep", recording_sleep)
    manager, stderr = _device_manager(idp_config(server, "public-app"))
    _Approver(server, stderr).start()
    result = manager.authenticate()
    assert result.success, result.error
    assert sleeps
    assert set(sleeps) == {1.0}


def test_device_flow_without_endpoint_is_a_configuration_error(
    idp: IdentityProvider,
) -> None:
    config = idp_config(idp, "public-app", device_authorization_url=None)
    manager, _ = _device_manager(config)
    result = manager.authenticate()
    assert not result.success
    assert "the device flow needs a device_authorization_url" in result.error


def test_headless_machine_chooses_device_flow(
    idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROWSER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
    manager, stderr = _device_manager(idp_config(idp, "public-app"), device=None)
    _Approver(idp, stderr).start()
    result = manager.authenticate()
    assert result.success, result.error
    assert result.method == "device_code"


def test_revoke_makes_tokens_inactive(idp: IdentityProvider, browser_env) -> None:
    config = idp_config(idp, "confidential-app")
    console = Console(stdin=UnreadableInput(), stderr=io.StringIO())
    manager = OAuthManager(config, interactive=True, console=console)
    result = manager.authenticate()
    assert idp.introspect(result.refresh_token)["active"] is True

    manager.clear_token(revoke=True)

    assert not config.resolved_token_path.exists()
    assert idp.introspect(result.refresh_token)["active"] is False
    assert idp.introspect(result.access_token)["active"] is False


def test_failed_revocation_still_removes_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    path = tmp_path / "svc_token.json"
    TokenStore(path).save(
        StoredToken(access_token="at-value", refresh_token="rt-value", client_id="cid")
    )
    config = AuthConfig(
        service="svc",
        client_id="cid",
        token_path=path,
        revocation_url=f"http://127.0.0.1:{port}/revoke",
    )
    with pytest.raises(RevocationError, match="connection_failed") as raised:
        OAuthManager(config, http_timeout=2).clear_token(revoke=True)
    assert not path.exists()
    assert raised.value.still_live == "refresh token"
    assert "The refresh token may still be valid at the service" in str(raised.value)


def test_microsoft_revocation_explains_missing_endpoint(planopticon_home: Path) -> None:
    from video_processor.auth import get_auth_config

    config = get_auth_config("microsoft")
    TokenStore(config.resolved_token_path).save(
        StoredToken(access_token="at", refresh_token="rt", client_id="cid")
    )
    with pytest.raises(RevocationError, match="has no token revocation endpoint"):
        OAuthManager(config).clear_token(revoke=True)
    assert not config.resolved_token_path.exists()


def test_cli_logout_revoke(
    idp: IdentityProvider, browser_env, planopticon_home: Path
) -> None:
    write_service_table(
        planopticon_home, "idp", idp_service_table(idp, "confidential-app")
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["auth", "idp"]).exit_code == 0
    saved = json.loads((planopticon_home / "idp_token.json").read_text())
    result = runner.invoke(cli, ["auth", "idp", "--logout", "--revoke"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Revoked the idp token at the service and removed the saved token.\n"
    )
    assert idp.introspect(saved["refresh_token"])["active"] is False


def test_cli_device_flag_uses_device_flow(
    idp: IdentityProvider, planopticon_home: Path
) -> None:
    table = idp_service_table(idp, "public-app")
    write_service_table(planopticon_home, "idp", table)
    env = {**os.environ, "PLANOPTICON_HOME": str(planopticon_home)}
    script = Path(sys.executable).parent / "planopticon"
    with subprocess.Popen(
        [str(script), "auth", "idp", "--device"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stderr is not None
        code = None
        for line in process.stderr:
            match = USER_CODE.search(line)
            if match:
                code = match.group(1)
                break
        assert code
        idp.approve_device(code)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out == "idp authentication successful (device_code).\n"


def _pipe_console() -> tuple[Console, int, io.StringIO]:
    read_fd, write_fd = os.pipe()
    stderr = io.StringIO()
    stdin = os.fdopen(read_fd, "r")
    return Console(stdin=stdin, stderr=stderr), write_fd, stderr


def _port_of(redirect_uri: str) -> int:
    return int(redirect_uri.split(":")[2].split("/")[0])


def test_listener_wins_race_with_paste(idp: IdentityProvider, browser_env) -> None:
    console, write_fd, stderr = _pipe_console()
    try:
        manager = OAuthManager(
            idp_config(idp, "public-app"), interactive=True, console=console
        )
        result = manager.authenticate()
        assert result.success, result.error
        assert "paste the URL it was redirected to here" in stderr.getvalue()
        os.write(write_fd, b"typed later\n")
        assert console.stdin.readline() == "typed later\n"
    finally:
        os.close(write_fd)
        console.stdin.close()
    port = _port_of(query_of(browser_env.last_run["url"])["redirect_uri"])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_pasted_url_wins_race_with_listener(idp: IdentityProvider, browser_env) -> None:
    browser_env.set_action("remote")
    console, write_fd, stderr = _pipe_console()

    def paste() -> None:
        final = _wait_for(lambda: browser_env.runs and browser_env.final_url)
        os.write(write_fd, b"not a url\n")
        os.write(write_fd, final.encode() + b"\n")

    paster = threading.Thread(target=paste, daemon=True)
    paster.start()
    try:
        manager = OAuthManager(
            idp_config(idp, "public-app"), interactive=True, console=console
        )
        result = manager.authenticate()
    finally:
        paster.join(5)
        os.close(write_fd)
        console.stdin.close()
    assert result.success, result.error
    assert result.method == "oauth_pkce"
    assert browser_env.listener_status is None
    assert "That is not a redirected URL." in stderr.getvalue()
    port = _port_of(query_of(browser_env.last_run["url"])["redirect_uri"])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_no_browser_prints_url_only(idp: IdentityProvider, browser_env) -> None:
    stderr = io.StringIO()
    console = Console(stdin=UnreadableInput(), stderr=stderr)
    manager = OAuthManager(
        idp_config(idp, "public-app"),
        interactive=True,
        console=console,
        open_browser=False,
    )

    def printed_url() -> Optional[str]:
        match = AUTHORIZE_URL.search(stderr.getvalue())
        return match.group(0) if match else None

    def sign_in_elsewhere() -> None:
        url = _wait_for(printed_url)
        subprocess.run(
            [sys.executable, str(FAKE_BROWSER), url],
            env={**os.environ, "FAKE_BROWSER_LOG": str(browser_env.log_path)},
            check=True,
            timeout=30,
        )

    other_device = threading.Thread(target=sign_in_elsewhere, daemon=True)
    other_device.start()
    result = manager.authenticate()
    other_device.join(5)
    assert result.success, result.error
    assert len(browser_env.runs) == 1
    assert "No browser could be opened" not in stderr.getvalue()


def test_device_flow_keeps_polling_while_pending(idp: IdentityProvider) -> None:
    manager, stderr = _device_manager(idp_config(idp, "public-app"))
    idp.reset_stats()

    def approve_late() -> None:
        code = _wait_for(
            lambda: (m := USER_CODE.search(stderr.getvalue())) and m.group(1)
        )
        time.sleep(2.5)
        idp.approve_device(code)

    approver = threading.Thread(target=approve_late, daemon=True)
    approver.start()
    result = manager.authenticate()
    approver.join(5)
    assert result.success, result.error
    polls = idp.stats()["token_requests"].get(
        "urn:ietf:params:oauth:grant-type:device_code"
    )
    assert polls is not None
    assert polls >= 3


def test_pasted_code_prompt_times_out(idp: IdentityProvider, browser_env) -> None:
    console, write_fd, _ = _pipe_console()
    config = idp_config(idp, "public-app", redirect_uri=PRIVATE_USE_REDIRECT_URI)
    try:
        manager = OAuthManager(
            config, interactive=True, console=console, login_timeout=1
        )
        started = time.monotonic()
        result = manager.authenticate()
        elapsed = time.monotonic() - started
    finally:
        os.close(write_fd)
        console.stdin.close()
    assert not result.success
    assert "No authorization code was entered within 1 s" in result.error
    assert elapsed < 5


def test_listener_binds_the_named_loopback_address() -> None:
    from video_processor.auth.loopback import RedirectListener

    with RedirectListener("http://127.0.0.2/cb", "state-value") as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.2:")
        port = _port_of(listener.redirect_uri)
        with socket.create_connection(("127.0.0.2", port), timeout=2):
            pass
