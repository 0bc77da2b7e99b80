"""The one clock of the package.

Everything that compares a token's expiry with the present calls :func:`now`,
and every back-off calls :func:`sleep`, so a test can replace just these two.
"""

from __future__ import annotations

import time


def now() -> float:
    """Return the current Unix time in seconds."""
    return time.time()


def sleep(seconds: float) -> None:
    """Wait ``seconds`` before a retry."""
    time.sleep(seconds)
