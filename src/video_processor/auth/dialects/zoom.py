"""Zoom's OAuth dialect."""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..config import AuthConfig
from ..endpoint import EndpointRequest
from ..token import StoredToken
from ._base import Client, Dialect


class ZoomDialect(Dialect):
    """Zoom: HTTP Basic client authentication, always; grants in the query.

    Zoom's OAuth documentation passes grant parameters in the query string
    and assumes ``plain`` PKCE when the method is omitted, which the
    authorization request never does.
    """

    name = "zoom"
    # Zoom authenticates every token request with HTTP Basic.
    public_auth_method = "client_secret_basic"
    accepts_oob_redirect = False

    def client_credentials_request(
        self, config: AuthConfig, client: Client, account_id: str
    ) -> EndpointRequest:
        request = super().client_credentials_request(config, client, account_id)
        if (config.client_credentials_grant or "account_credentials") == (
            "account_credentials"
        ):
            request.params = dict(parse_qsl((request.content or b"").decode()))
            request.content = None
            request.headers.pop("Content-Type", None)
        return request

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        # Zoom revokes the access token, which ends the grant.
        return self._access_token_revocation(config, client, token)
