"""GitHub's OAuth dialect."""

from __future__ import annotations

import json
from typing import Optional

from authlib.oauth2.auth import ClientAuth

from ..config import AuthConfig
from ..endpoint import EndpointRequest
from ..errors import ConfigurationError
from ..token import StoredToken
from ._base import Client, Dialect


class GitHubDialect(Dialect):
    """GitHub: JSON on request, errors with HTTP 200, a non-standard revocation.

    The token endpoint responds form-encoded unless asked for JSON, which
    every request here does; ``endpoint.parse_response`` reads both and finds
    errors at any status. The device flow sends no secret. Revocation is
    ``DELETE /applications/{client_id}/token`` with Basic authentication and a
    JSON body (GitHub's REST API, "OAuth authorizations").
    """

    name = "github"
    secret_auth_method = "client_secret_post"
    accepts_oob_redirect = False

    def device_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        return "none"

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        if not client.client_secret:
            raise ConfigurationError(
                "github: revoking a token needs the client secret. Set "
                "GITHUB_CLIENT_SECRET."
            )
        url = self.endpoint(
            config, self._revocation_url(config, client), "revocation endpoint"
        )
        basic = ClientAuth(
            client.client_id, client.client_secret, "client_secret_basic"
        )
        headers = {
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
        }
        url, headers, _ = basic.prepare("DELETE", url, headers, "")
        return EndpointRequest(
            "DELETE",
            url,
            headers=headers,
            content=json.dumps({"access_token": token.access_token}).encode(),
            secrets=(token.access_token, client.client_secret),
        )
