"""An ``httpx.Auth`` that attaches the service's token and refreshes on 401.

Importing this module imports httpx; ``video_processor.auth`` does not.
"""

from __future__ import annotations

import logging
from typing import Generator

import httpx

from ._secrets import fingerprint
from .errors import AuthError
from .manager import OAuthManager

logger = logging.getLogger(__name__)


class OAuthManagerAuth(httpx.Auth):
    """Bearer authentication backed by an ``OAuthManager``.

    On HTTP 401 the token is reported as rejected (``invalidate``), a new
    token is obtained, and the request is sent again, once. A second 401 is
    returned to the caller as it is. The manager blocks on file locks and
    token requests, so with an ``httpx.AsyncClient`` it blocks the event loop
    while it obtains a token.

    Args:
        manager: The manager that supplies tokens.

    Raises:
        AuthError: From a request, when no token can be obtained.
    """

    requires_request_body = True

    def __init__(self, manager: OAuthManager) -> None:
        self.manager = manager

    def __repr__(self) -> str:
        return f"OAuthManagerAuth({self.manager.config.service!r})"

    def auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        logger.info(
            "%s rejected token %s with HTTP 401; refreshing once",
            self.manager.config.service,
            fingerprint(token),
        )
        self.manager.invalidate(token)
        retry_token = self._token()
        if retry_token == token:
            return
        request.headers["Authorization"] = f"Bearer {retry_token}"
        yield request

    def _token(self) -> str:
        result = self.manager.authenticate()
        if not result.success or not result.access_token:
            raise AuthError(result.error or "authentication failed")
        return result.access_token
