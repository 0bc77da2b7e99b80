"""The refresh token grant (RFC 6749 section 6)."""

from __future__ import annotations

import logging
from typing import Optional

from .._secrets import fingerprint
from ..config import AuthConfig
from ..dialects import get_dialect
from ..endpoint import HttpSettings
from ..errors import ConfigurationError
from ..token import StoredToken
from ._client import build_client, request_token

logger = logging.getLogger(__name__)


def refresh_token(
    config: AuthConfig, token: StoredToken, *, settings: Optional[HttpSettings] = None
) -> StoredToken:
    """Exchange ``token``'s refresh token for a new token.

    The new token keeps the old refresh token when the response carries
    none, and keeps the method by which the grant was first obtained.

    Raises:
        ConfigurationError: There is no refresh token or no client ID.
        TokenEndpointError: The service rejected the refresh.
    """
    if not token.refresh_token:
        raise ConfigurationError(
            f"{config.service}: the saved token has no refresh token."
        )
    dialect = get_dialect(config)
    client = build_client(config, dialect, token=token)
    request = dialect.token_request(
        config,
        client,
        {"grant_type": "refresh_token", "refresh_token": token.refresh_token},
    )
    logger.debug(
        "Refreshing the %s token (refresh token %s)",
        config.service,
        fingerprint(token.refresh_token),
    )
    # NOTE: a retry after a lost response re-sends a refresh token that the
    # service may already have rotated. A service with single-use refresh
    # tokens then rejects it, and the person must sign in again.
    refreshed = request_token(
        request,
        client,
        method=token.method or "oauth_pkce",
        settings=settings,
        previous=token,
    )
    logger.info(
        "Refreshed the %s token; refresh token %s",
        config.service,
        "rotated" if refreshed.refresh_token != token.refresh_token else "kept",
    )
    return refreshed
