"""Pytest fixtures for the test authorization server and the fake browser.

- ``idp``: one server for the whole session, started with default_config().
- ``idp_factory``: starts extra servers with other settings for one test.
- ``browser_env``: makes ``webbrowser.open`` run support/fake_browser.py.
"""

from __future__ import annotations

import json
import shlex
import sys
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.idp import IdentityProvider, default_config

FAKE_BROWSER_SCRIPT = Path(__file__).resolve().parent / "fake_browser.py"


@pytest.fixture(scope="session")
def idp() -> Iterator[IdentityProvider]:
    """Test server shared by the session, with the default clients and settings.

    Its state (grants, tokens, request counters) carries over between tests. Call
    ``idp.reset_stats()`` before counting requests.
    """
    server = IdentityProvider().start(default_config())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def idp_factory() -> Iterator[Callable[..., IdentityProvider]]:
    """Factory that starts a test server per call, all stopped after the test.

    Keyword arguments are settings of default_config(), for example
    ``idp_factory(accessTokenTtl=2, enforceSlowDown=True)``.
    """
    servers: list[IdentityProvider] = []

    def start(**settings: Any) -> IdentityProvider:
        server = IdentityProvider()
        servers.append(server)
        return server.start(default_config(**settings))

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


class BrowserEnv:
    """Fake browser set up for one test, and access to the runs it logged.

    Each run of the browser adds one JSON object to ``log_path``. The properties
    ``final_url``, ``listener_status``, ``listener_body``, ``page_status``,
    ``page_body`` and ``error`` read the last run.
    """

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, log_path: Path, command: str
    ) -> None:
        self._monkeypatch = monkeypatch
        self.log_path = log_path
        self.command = command

    def set_action(self, action: str) -> None:
        """Set FAKE_BROWSER_ACTION: ``consent``, ``deny``, ``ignore`` or ``remote``."""
        self._monkeypatch.setenv("FAKE_BROWSER_ACTION", action)

    def set_login(self, login: str) -> None:
        """Set the login name the browser submits, which becomes the token subject."""
        self._monkeypatch.setenv("FAKE_BROWSER_LOGIN", login)

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Results of all runs so far, oldest first."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    @property
    def last_run(self) -> dict[str, Any]:
        """Result of the latest run. Raises AssertionError when there was none."""
        runs = self.runs
        if not runs:
            raise AssertionError(
                f"the fake browser has not run: {self.log_path} is empty or missing"
            )
        return runs[-1]

    @property
    def final_url(self) -> str | None:
        return self.last_run["final_url"]

    @property
    def listener_status(self) -> int | None:
        return self.last_run["listener_status"]

    @property
    def listener_body(self) -> str | None:
        return self.last_run["listener_body"]

    @property
    def page_status(self) -> int | None:
        return self.last_run["page_status"]

    @property
    def page_body(self) -> str | None:
        return self.last_run["page_body"]

    @property
    def error(self) -> str | None:
        return self.last_run["error"]


@pytest.fixture
def browser_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[BrowserEnv]:
    """Point ``BROWSER`` at the fake browser for one test.

    ``webbrowser`` reads ``BROWSER`` once per process and caches the browsers it
    found in ``_browsers`` and ``_tryorder`` (CPython 3.10 to 3.13). The fixture
    clears that cache so the next ``webbrowser.open`` reads the new value, and
    monkeypatch restores the previous cache afterwards. DISPLAY and
    WAYLAND_DISPLAY are removed so that no graphical browser is registered.
    """
    log_path = tmp_path / "fake-browser.jsonl"
    command = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_BROWSER_SCRIPT))} %s"
    )
    monkeypatch.setenv("BROWSER", command)
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(log_path))
    monkeypatch.setenv("FAKE_BROWSER_ACTION", "consent")
    monkeypatch.delenv("FAKE_BROWSER_LOGIN", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_os_preferred_browser", None)
    yield BrowserEnv(monkeypatch, log_path, command)
