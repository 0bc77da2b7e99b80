"""Notion's OAuth dialect."""

from __future__ import annotations

from typing import Dict

from ..config import AuthConfig
from ..endpoint import EndpointRequest
from ..token import StoredToken
from ._base import Client, Dialect, as_json_request


class NotionDialect(Dialect):
    """Notion: HTTP Basic client authentication and a JSON body.

    Notion's token endpoint takes JSON, not a form, needs the secret at every
    call, supports no PKCE, and wants ``owner=user`` on the authorization URL.
    """

    name = "notion"
    # Notion needs the secret at every token call.
    public_auth_method = "client_secret_basic"
    accepts_oob_redirect = False
    uses_pkce = False

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        return {"owner": "user"}

    def token_request(
        self, config: AuthConfig, client: Client, grant: Dict[str, str]
    ) -> EndpointRequest:
        return as_json_request(super().token_request(config, client, grant))

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        return as_json_request(self._access_token_revocation(config, client, token))
