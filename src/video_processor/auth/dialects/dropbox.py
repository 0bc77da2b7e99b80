"""Dropbox's OAuth dialect."""

from __future__ import annotations

from typing import Dict, Optional

from ..config import OOB_REDIRECT_URI, AuthConfig
from ..endpoint import EndpointRequest
from ..token import StoredToken
from ._base import Client, Dialect


class DropboxDialect(Dialect):
    """Dropbox: offline access, and a code shown to the user by default.

    A refresh token comes only with ``token_access_type=offline``. With no
    ``redirect_uri`` Dropbox shows the code on its own page for the user to
    paste, which is what the out-of-band redirect URI means here. Revocation
    takes the access token as a Bearer header.
    """

    name = "dropbox"
    revokes_with_access_token = True

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        return {"token_access_type": "offline"}

    def redirect_uri_param(self, redirect_uri: str) -> Optional[str]:
        return None if redirect_uri == OOB_REDIRECT_URI else redirect_uri

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        url = self.endpoint(
            config, self._revocation_url(config, client), "revocation endpoint"
        )
        return EndpointRequest(
            "POST",
            url,
            headers={"Authorization": f"Bearer {token.access_token}"},
            secrets=(token.access_token,),
        )
