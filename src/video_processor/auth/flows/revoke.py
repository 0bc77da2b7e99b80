"""Revocation at the service: RFC 7009, or the service's own form."""

from __future__ import annotations

import logging
from typing import Optional

from ..config import AuthConfig
from ..dialects import get_dialect
from ..endpoint import HttpSettings, send
from ..errors import AuthError, ConfigurationError, RevocationError, StorageError
from ..store import TokenStore
from ..token import StoredToken
from ._client import build_client
from .refresh import refresh_token

logger = logging.getLogger(__name__)


def revoke_token(
    config: AuthConfig, token: StoredToken, *, settings: Optional[HttpSettings] = None
) -> None:
    """Revoke ``token`` at the service.

    Raises:
        ConfigurationError: The service has no revocation endpoint (Microsoft
            has none), or a needed client credential is missing.
        TokenEndpointError: The service rejected the revocation.
    """
    dialect = get_dialect(config)
    client = build_client(config, dialect, token=token)
    request = dialect.revocation_request(config, client, token)
    send(request, settings=settings, expect_body=False)
    logger.info("Revoked the %s token at the service", config.service)


def revoke_saved_token(
    config: AuthConfig, store: TokenStore, settings: Optional[HttpSettings] = None
) -> Optional[RevocationError]:
    """Revoke the saved token at the service; return the error, never raise it.

    The caller holds the store's lock. A token whose access token must be
    live for revocation (Dropbox) is refreshed first when it has expired.
    """
    service = config.service
    try:
        token = store.load(use_cache=False)
    except StorageError as exc:
        return RevocationError(
            f"{service}: nothing was revoked: {exc}", still_live=None
        )
    if token is None:
        return RevocationError(
            f"{service}: nothing was revoked because the saved token file is "
            "corrupt; it was moved aside.",
            still_live=None,
        )
    live = "refresh token" if token.refresh_token else "access token"
    try:
        if get_dialect(config).revokes_with_access_token and not token.is_fresh():
            token = refresh_token(config, token, settings=settings)
        revoke_token(config, token, settings=settings)
    except ConfigurationError as exc:
        reason = str(exc).removeprefix(f"{service}: ")
        message = f"{service}: the token was not revoked at the service: {reason}"
        logger.info(message)
        return RevocationError(message, still_live=live)
    except AuthError as exc:
        reason = str(exc).removeprefix(f"{service}: ").rstrip(".")
        message = (
            f"{service}: revocation failed ({reason}). The {live} may still "
            "be valid at the service until it expires."
        )
        logger.info(message)
        return RevocationError(message, still_live=live)
    return None
