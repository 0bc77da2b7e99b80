"""Assertions that no secret appears in captured text."""

from __future__ import annotations

from typing import Iterable, Optional


def assert_no_secret(text: str, secrets: Iterable[Optional[str]]) -> None:
    """Fail if any non-empty secret, or its first 8 characters, is in ``text``."""
    for secret in secrets:
        if not secret:
            continue
        assert secret not in text, "a secret appears in the captured output"
        if len(secret) >= 12:
            assert secret[:8] not in text, "a secret's prefix appears in the output"
