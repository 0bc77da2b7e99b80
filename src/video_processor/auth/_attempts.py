"""The reasons an ``authenticate()`` call collects, and its failure message."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List

from .config import AuthConfig
from .errors import AuthError, LockTimeoutError, TokenEndpointError

logger = logging.getLogger(__name__)


@dataclass
class Attempts:
    """Reasons why the steps of one ``authenticate()`` call did not succeed."""

    service: str
    reasons: List[str] = field(default_factory=list)
    # Another process held the token file's lock past the timeout.
    lock_busy: bool = False
    # Refreshing failed for a reason that may pass (an outage, throttling).
    service_unavailable: bool = False

    def add(self, step: str, reason: str) -> None:
        """Record why ``step`` did not succeed."""
        reason = reason.removeprefix(f"{self.service}: ").rstrip(". ")
        self.reasons.append(f"{step}: {reason}")
        logger.debug("%s: %s: %s", self.service, step, reason)

    def add_failure(self, step: str, action: str, error: AuthError) -> None:
        """Record why ``step`` failed, and note a lock held by another process."""
        if isinstance(error, LockTimeoutError):
            self.lock_busy = True
        self.add(step, failure_reason(action, error))

    def failure_message(self, config: AuthConfig) -> str:
        """Build the error of a failed chain: the reasons, then what to set.

        Only variables that are not set yet are named.
        """
        message = f"{config.service}: no authentication method succeeded."
        if self.reasons:
            message += " " + "; ".join(self.reasons) + "."
        hints = []
        oauth = config.supports_oauth
        if oauth and config.client_id_env and not config.resolved_client_id:
            names = [config.client_id_env]
            if config.client_secret_env and not config.resolved_client_secret:
                names.append(config.client_secret_env)
            hints.append(" and ".join(names) + " to sign in with OAuth")
        if oauth and config.account_id_env and not config.resolved_account_id:
            hints.append(
                f"{config.account_id_env} as well for server-to-server sign-in"
            )
        if config.api_key_env and not config.resolved_api_key:
            hints.append(f"{config.api_key_env} to use an API key")
        if hints:
            message += " Set " + ", or ".join(hints) + "."
        return message


def failure_reason(action: str, error: AuthError) -> str:
    """Describe why ``action`` failed, telling rejections from outages."""
    if not isinstance(error, TokenEndpointError):
        return str(error)
    rejected = error.status is not None and not error.retryable
    verb = "rejected by the service" if rejected else "failed"
    return f"{action} {verb} ({error.summary})"
