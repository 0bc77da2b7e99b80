"""Exceptions raised inside the package.

``OAuthManager.authenticate()`` never raises these for an authentication
failure: it turns them into ``AuthResult.error``. They reach callers of the
lower-level helpers, the command line and ``clear_token(revoke=True)``.
No message ever contains a token, a secret or an authorization code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

# Standard error codes (RFC 6749 section 5.2, RFC 8628 section 3.5) and the
# names some services use for the same condition. A retry cannot help these.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "expired_token",
        "redirect_uri_mismatch",
        "bad_verification_code",
        "bad_refresh_token",
        "incorrect_client_credentials",
    }
)
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


class AuthError(Exception):
    """Base class of every error the package raises."""


class ConfigurationError(AuthError):
    """A service's configuration is missing a value or has an invalid one."""


class StorageError(AuthError):
    """A token file or its directory cannot be read, written or locked."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class LockTimeoutError(StorageError):
    """Another process held the token file's lock for longer than allowed."""


class TokenEndpointError(AuthError):
    """An OAuth endpoint rejected a request or could not be reached.

    Attributes:
        error: The OAuth error code, for example ``invalid_grant``, or
            ``http_503`` / ``connection_failed`` when the service sent none.
        description: The service's ``error_description`` or equivalent.
        status: The HTTP status, or ``None`` when no response arrived.
        retry_after: Seconds to wait, from the response's ``Retry-After``.
    """

    def __init__(
        self,
        error: str,
        description: Optional[str] = None,
        *,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``error: description``, or just the error code."""
        if self.description:
            return f"{self.error}: {self.description}"
        return self.error

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again later can succeed."""
        if self.error in PERMANENT_ERRORS:
            return False
        if self.error in TRANSIENT_ERRORS or self.error == "connection_failed":
            return True
        return self.status is not None and (self.status == 429 or self.status >= 500)


class RevocationError(AuthError):
    """Revocation at the service failed or was impossible.

    The saved token was removed all the same. ``still_live`` names what may
    still be valid at the service: ``"refresh token"``, ``"access token"``
    or ``None`` when nothing could be read.
    """

    def __init__(self, message: str, *, still_live: Optional[str]) -> None:
        super().__init__(message)
        self.still_live = still_live


class DeviceFlowUnavailableError(TokenEndpointError):
    """The service rejected the device authorization request itself."""


class AuthorizationError(AuthError):
    """The interactive step ended without an authorization code."""
