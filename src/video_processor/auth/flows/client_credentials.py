"""Server-to-server sign-in: Zoom's ``account_credentials`` grant, or the
standard ``client_credentials`` grant (RFC 6749 section 4.4)."""

from __future__ import annotations

import logging
from typing import Optional

from ..config import AuthConfig
from ..dialects import get_dialect
from ..endpoint import HttpSettings
from ..errors import ConfigurationError
from ..token import StoredToken
from ._client import build_client, request_token, set_hint

logger = logging.getLogger(__name__)


def fetch_client_credentials_token(
    config: AuthConfig, *, settings: Optional[HttpSettings] = None
) -> StoredToken:
    """Request a token for the application itself, with no user.

    Raises:
        ConfigurationError: The account ID, client ID or secret is missing.
        TokenEndpointError: The service rejected the request.
    """
    account_id = config.resolved_account_id
    if not account_id:
        raise ConfigurationError(f"{config.service}: no account ID is configured.")
    dialect = get_dialect(config)
    client = build_client(config, dialect)
    if not client.client_secret:
        raise ConfigurationError(
            f"{config.service}: server-to-server sign-in needs a client secret."
            + set_hint(config.client_secret_env)
        )
    request = dialect.client_credentials_request(config, client, account_id)
    token = request_token(
        request,
        client,
        method="client_credentials",
        settings=settings,
        requested_scopes=config.scopes,
    )
    logger.info("Obtained a %s token with the client credentials grant", config.service)
    return token
