"""Google's OAuth dialect."""

from __future__ import annotations

from typing import Dict
from urllib.parse import urlencode

from ..config import AuthConfig
from ..endpoint import EndpointRequest
from ..token import StoredToken
from ._base import FORM, Client, Dialect


class GoogleDialect(Dialect):
    """Google: offline access, body client authentication, loopback redirect.

    A refresh token is issued only with ``access_type=offline``, and again
    after the first consent only with ``prompt=consent`` (Google's OAuth 2.0
    for web server applications, "Refresh the access token (offline
    access)"). Google blocks the out-of-band redirect since 2023-01-31.
    """

    name = "google"
    secret_auth_method = "client_secret_post"
    accepts_oob_redirect = False
    # Google's device flow serves only "TVs and Limited Input" clients and a
    # short list of scopes that excludes Drive, so a headless machine uses the
    # pasted redirect URL instead unless the device flow is requested.
    device_flow_when_headless = False

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        return {"access_type": "offline", "prompt": "consent"}

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        # Google's revocation endpoint takes the token alone, no client
        # authentication; revoking the refresh token ends the grant.
        url = self.endpoint(
            config, self._revocation_url(config, client), "revocation endpoint"
        )
        value = token.refresh_token or token.access_token
        return EndpointRequest(
            "POST",
            url,
            headers={"Content-Type": FORM},
            content=urlencode({"token": value}).encode(),
            secrets=(value,),
        )
