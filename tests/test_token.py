"""Token records built from token responses."""

from __future__ import annotations

import pytest

from video_processor.auth import _clock
from video_processor.auth.token import EXPIRY_MARGIN, StoredToken


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    moment = 1_800_000_000.0
    monkeypatch.setattr(_clock, "now", lambda: moment)
    return moment


def _build(response: dict, **kwargs: object) -> StoredToken:
    return StoredToken.from_response(
        response, method="oauth_pkce", client_id="cid", client_secret=None, **kwargs
    )


def test_expires_at_keeps_sixty_second_margin(frozen_clock: float) -> None:
    token = _build({"access_token": "a", "expires_in": 3600})
    assert EXPIRY_MARGIN == 60
    assert token.expires_at == frozen_clock + 3600 - 60


def test_expires_in_may_be_a_string(frozen_clock: float) -> None:
    token = _build({"access_token": "a", "expires_in": "7200"})
    assert token.expires_at == frozen_clock + 7200 - 60


def test_missing_expires_in_means_no_expiry(frozen_clock: float) -> None:
    token = _build({"access_token": "a"})
    assert token.expires_at is None
    assert token.is_fresh()


@pytest.mark.parametrize("value", ["soon", "3600s", True, float("nan"), [3600]])
def test_invalid_expires_in_means_no_expiry(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    token = _build({"access_token": "a", "refresh_token": "new", "expires_in": value})
    assert token.expires_at is None
    assert token.refresh_token == "new"
    assert "Ignoring an expires_in that is not a number" in caplog.text


@pytest.mark.parametrize(
    ("lifetime", "expected"), [(120, 60), (60, 30), (30, 15), (0, 0), (-100, 0)]
)
def test_short_lifetime_gets_half_as_margin(
    frozen_clock: float, lifetime: int, expected: float
) -> None:
    token = _build({"access_token": "a", "expires_in": lifetime})
    assert token.expires_at == frozen_clock + expected


def test_non_string_refresh_token_is_rejected() -> None:
    with pytest.raises(ValueError, match="refresh_token is not a string"):
        _build({"access_token": "a", "refresh_token": 12345})


def test_non_string_token_type_is_dropped() -> None:
    assert _build({"access_token": "a", "token_type": 1}).token_type is None


def test_missing_access_token_is_rejected() -> None:
    with pytest.raises(ValueError, match="no access_token"):
        _build({"token_type": "bearer"})


def test_refresh_without_new_refresh_token_keeps_old() -> None:
    previous = StoredToken(access_token="old", refresh_token="keep-me", scope="a b")
    token = _build({"access_token": "new", "expires_in": 60}, previous=previous)
    assert token.refresh_token == "keep-me"
    assert token.scope == "a b"


def test_rotated_refresh_token_replaces_old() -> None:
    previous = StoredToken(access_token="old", refresh_token="old-refresh")
    token = _build(
        {"access_token": "new", "refresh_token": "new-refresh"}, previous=previous
    )
    assert token.refresh_token == "new-refresh"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("repo,read:org", "repo read:org"),
        ("repo read:org", "repo read:org"),
        (["a", "b"], "a b"),
    ],
)
def test_granted_scope_is_normalized(scope: object, expected: str) -> None:
    assert _build({"access_token": "a", "scope": scope}).scope == expected


def test_missing_scope_falls_back_to_requested() -> None:
    token = _build({"access_token": "a"}, requested_scopes=["read", "write"])
    assert token.scope == "read write"


def test_expired_token_is_not_fresh(frozen_clock: float) -> None:
    token = StoredToken(access_token="a", expires_at=frozen_clock - 1)
    assert not token.is_fresh()
    assert StoredToken(access_token="a", expires_at=frozen_clock + 1).is_fresh()


def test_saved_expires_at_may_be_numeric_string() -> None:
    token = StoredToken.from_json({"access_token": "a", "expires_at": "1800000000.5"})
    assert token.expires_at == 1800000000.5
