"""Token files: modes, atomic writes, corrupt files, the read cache."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _token(
    access: str = "access-one", refresh: str | None = "refresh-one"
) -> StoredToken:
    return StoredToken(access_token=access, refresh_token=refresh, expires_at=None)


def test_save_creates_private_directory_and_file(
    tmp_path: Path, permissive_umask: None
) -> None:
    store = TokenStore(tmp_path / "a" / "b" / "zoom_token.json")
    store.save(_token())
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(store.path) == 0o600


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "zoom_token.json")
    store.save(_token("first"))
    store.save(_token("second"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoom_token.json"]
    assert json.loads(store.path.read_text())["access_token"] == "second"


def test_save_writes_documented_fields(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    token = StoredToken(
        access_token="a",
        refresh_token="r",
        expires_at=123.0,
        client_id="cid",
        client_secret="cs",
    )
    store.save(token)
    data = json.loads(store.path.read_text())
    for key in (
        "access_token",
        "refresh_token",
        "expires_at",
        "client_id",
        "client_secret",
    ):
        assert key in data, key
    assert data["expires_at"] == 123.0


def test_load_round_trips_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"access_token": "a", "workspace_name": "Team"}))
    path.chmod(0o600)
    store = TokenStore(path)
    token = store.load()
    assert token is not None
    store.save(token)
    assert json.loads(path.read_text())["workspace_name"] == "Team"


def test_load_tightens_loose_file_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"access_token": "a"}))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        token = TokenStore(path).load()
    assert token is not None
    assert _mode(path) == 0o600
    assert "readable by others" in caplog.text


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"refresh_token": "r"}',
        b'{"access_token": 5}',
        b"\xff\xfe",
    ],
)
def test_corrupt_file_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "zoom_token.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert TokenStore(path).load() is None
    assert not path.exists()
    aside = [
        p for p in tmp_path.iterdir() if p.name.startswith("zoom_token.json.corrupt-")
    ]
    assert len(aside) == 1
    assert aside[0].read_bytes() == content
    assert "corrupt" in caplog.text


def test_second_corrupt_file_gets_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    for _ in range(2):
        path.write_text("garbage")
        TokenStore(path).load()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 2


def test_missing_file_loads_as_none(tmp_path: Path) -> None:
    assert TokenStore(tmp_path / "none.json").load() is None


def test_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    store.save(_token("cached"))
    first = store.load()
    second = store.load()
    assert first is second


def test_file_replaced_by_another_writer_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    reader = TokenStore(path)
    TokenStore(path).save(_token("old"))
    assert reader.load().access_token == "old"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"access_token": "new-from-elsewhere"}))
    os.replace(other, path)
    loaded = reader.load()
    assert loaded is not None
    assert loaded.access_token == "new-from-elsewhere"


def test_delete_removes_file_and_reports(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    assert store.delete() is False
    store.save(_token())
    assert store.delete() is True
    assert not store.path.exists()
    assert store.load() is None


def test_lock_file_is_private(tmp_path: Path, permissive_umask: None) -> None:
    store = TokenStore(tmp_path / "t.json")
    with store.lock():
        assert _mode(store.lock_path) == 0o600


def test_lock_is_reentrant_in_one_thread(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json", lock_timeout=1)
    with store.lock(), store.lock():
        store.save(_token())
    assert store.load() is not None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{}")
    path.chmod(0o000)
    assert TokenStore(path).load() is None
    assert not path.exists()
    assert len(list(tmp_path.glob("t.json.corrupt-*"))) == 1


def test_loose_home_directory_is_tightened(
    planopticon_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planopticon_home.mkdir(mode=0o755)
    planopticon_home.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        TokenStore(planopticon_home / "zoom_token.json").save(_token())
    assert _mode(planopticon_home) == 0o700
    assert "was open to others" in caplog.text


def test_other_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    TokenStore(shared / "t.json").save(_token())
    assert _mode(shared) == 0o755
