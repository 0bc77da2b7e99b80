"""Pytest fixtures that start a fresh fake OAuth provider server for each test.

Each fixture yields a started server with its default knobs. Tests change knobs
by setting the server's attributes, which take effect on the next request. After
the test the server stops, and the fixture fails the test if a handler of the
fake raised, because that is a bug in the fake rather than a service response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from support.providers import (
    DropboxServer,
    GitHubServer,
    GoogleServer,
    MicrosoftServer,
    NotionServer,
    ProviderServer,
    ZoomServer,
)

ServerT = TypeVar("ServerT", bound=ProviderServer)


def _serve(server: ServerT) -> Iterator[ServerT]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
    if server.handler_errors:
        pytest.fail(
            f"fake {server.service} server raised in a handler: "
            f"{server.handler_errors!r}"
        )


@pytest.fixture
def zoom_server() -> Iterator[ZoomServer]:
    yield from _serve(ZoomServer())


@pytest.fixture
def google_server() -> Iterator[GoogleServer]:
    yield from _serve(GoogleServer())


@pytest.fixture
def microsoft_server() -> Iterator[MicrosoftServer]:
    yield from _serve(MicrosoftServer())


@pytest.fixture
def dropbox_server() -> Iterator[DropboxServer]:
    yield from _serve(DropboxServer())


@pytest.fixture
def github_server() -> Iterator[GitHubServer]:
    yield from _serve(GitHubServer())


@pytest.fixture
def notion_server() -> Iterator[NotionServer]:
    yield from _serve(NotionServer())
