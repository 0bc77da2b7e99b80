"""Revocation at the service: RFC 7009, or the service's own form."""

from __future__ import annotations

import logging
from typing import Optional

from ..config import AuthConfig
from ..dialects import get_dialect
from ..endpoint import HttpSettings, send
from ..token import StoredToken
from ._client import build_client

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
