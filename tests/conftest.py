"""Shared fixtures: an isolated PlanOpticon home, the authorization server
and the provider servers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from video_processor.auth import KNOWN_CONFIGS

pytest_plugins = ["support.idp_fixtures", "support.provider_fixtures"]

_SERVICE_VARIABLES = sorted(
    {
        name
        for config in KNOWN_CONFIGS.values()
        for name in (
            config.client_id_env,
            config.client_secret_env,
            config.api_key_env,
            config.account_id_env,
            config.redirect_uri_env,
            config.tenant_env,
        )
        if name
    }
)


@pytest.fixture(autouse=True)
def planopticon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give every test its own PlanOpticon home and no service credentials."""
    home = tmp_path / "planopticon-home"
    monkeypatch.setenv("PLANOPTICON_HOME", str(home))
    monkeypatch.delenv("PLANOPTICON_INTERACTIVE", raising=False)
    for name in _SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record of the package at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="video_processor")
    return caplog
