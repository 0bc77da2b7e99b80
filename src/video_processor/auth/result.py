"""``AuthResult``: the outcome of one authentication attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ._secrets import SECRET, masked_repr


@dataclass(repr=False)
class AuthResult:
    """Outcome of ``OAuthManager.authenticate()``.

    Args:
        success: Whether authentication succeeded.
        access_token: The access token, when successful.
        method: How the token was obtained: ``saved_token``,
            ``client_credentials``, ``oauth_pkce``, ``device_code`` or
            ``api_key``.
        expires_at: Expiry as a Unix timestamp, ``None`` for a token that
            does not expire.
        refresh_token: The refresh token, if the service issued one.
        error: Why authentication failed, without any secret.
    """

    success: bool
    access_token: Optional[str] = field(default=None, metadata=SECRET)
    method: Optional[str] = None
    expires_at: Optional[float] = None
    refresh_token: Optional[str] = field(default=None, metadata=SECRET)
    error: Optional[str] = None

    def __repr__(self) -> str:
        return masked_repr(self)
