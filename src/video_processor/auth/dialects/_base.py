"""The standard dialect (RFC 6749, 7636, 7009, 8628) and shared helpers."""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from ..config import OOB_REDIRECT_URI, AuthConfig
from ..endpoint import EndpointRequest, check_endpoint
from ..errors import ConfigurationError
from ..token import StoredToken

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = "application/x-www-form-urlencoded"
# Grant parameters that are secrets, scrubbed from error text the service
# sends back. Others, such as redirect_uri, are left for the user to see.
SECRET_GRANT_FIELDS = ("code", "code_verifier", "refresh_token", "device_code")


class Client:
    """The OAuth client identity used for one request."""

    def __init__(
        self, client_id: str, client_secret: Optional[str], auth_method: str
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_method = auth_method

    def __repr__(self) -> str:
        return f"Client({self.client_id!r}, auth_method={self.auth_method!r})"


class Dialect:
    """Standard OAuth 2.0 (RFC 6749, RFC 7636, RFC 7009, RFC 8628)."""

    name = "standard"
    # Whether the authorization request carries a PKCE challenge.
    uses_pkce = True
    # Default grant of the client credentials step when the config names none.
    client_credentials_grant = "account_credentials"
    # Whether revocation needs a live access token (it is refreshed first).
    revokes_with_access_token = False
    # Client authentication when a secret is configured, and when none is.
    secret_auth_method = "client_secret_basic"
    public_auth_method = "none"
    # Whether the service takes the out-of-band redirect URI. Unknown
    # services get the benefit of the doubt.
    accepts_oob_redirect = True
    # Whether a machine with no browser signs in with the device flow when
    # the config has a device authorization endpoint.
    device_flow_when_headless = True

    # -- client authentication -------------------------------------------

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        """Return how the client authenticates at the token endpoint.

        The config's ``token_endpoint_auth_method`` wins. Without it, the
        dialect decides by whether a client secret is configured.
        """
        if config.token_endpoint_auth_method:
            return config.token_endpoint_auth_method
        return self.secret_auth_method if secret else self.public_auth_method

    def device_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        """Return how the client authenticates in the device flow."""
        return self.client_auth_method(config, secret)

    # -- endpoints -------------------------------------------------------

    def endpoint(self, config: AuthConfig, url: Optional[str], name: str) -> str:
        """Return an endpoint URL after the transport check."""
        return check_endpoint(url, service=config.service, name=name)

    # -- authorization request -------------------------------------------

    def authorize_scopes(self, config: AuthConfig) -> List[str]:
        """Return the scopes to request at the authorization endpoint."""
        return list(config.scopes)

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        """Return extra authorization URL parameters the service needs.

        OpenID Connect servers grant ``offline_access`` (and so a refresh
        token) only with ``prompt=consent`` (OpenID Connect Core 1.0,
        section 11), so that scope brings the prompt along.
        """
        if "offline_access" in config.scopes:
            return {"prompt": "consent"}
        return {}

    def redirect_uri_param(self, redirect_uri: str) -> Optional[str]:
        """Return the ``redirect_uri`` to send, or ``None`` to send none."""
        return redirect_uri

    def check_redirect_uri(self, config: AuthConfig, redirect_uri: str) -> None:
        """Raise ``ConfigurationError`` for a redirect the service rejects."""
        if redirect_uri == OOB_REDIRECT_URI and not self.accepts_oob_redirect:
            variable = config.redirect_uri_env or "redirect_uri in config.toml"
            raise ConfigurationError(
                f"{config.service}: the out-of-band redirect URI {OOB_REDIRECT_URI} "
                f"is not accepted by the service. Use a loopback redirect URI "
                f"registered with the app (set {variable})."
            )

    # -- token requests --------------------------------------------------

    def token_request(
        self, config: AuthConfig, client: Client, grant: Dict[str, str]
    ) -> EndpointRequest:
        """Build a token endpoint request for ``grant``'s parameters."""
        url = self.endpoint(config, config.oauth_token_url, "token endpoint")
        grant = dict(grant)
        body = prepare_token_request(grant.pop("grant_type"), **grant)
        secrets = [grant[key] for key in SECRET_GRANT_FIELDS if grant.get(key)]
        return self._authenticated(client, url, body, secrets=secrets)

    def client_credentials_request(
        self, config: AuthConfig, client: Client, account_id: str
    ) -> EndpointRequest:
        """Build the client credentials (server-to-server) token request."""
        grant_type = config.client_credentials_grant or self.client_credentials_grant
        grant = {"grant_type": grant_type}
        if grant_type == "account_credentials":
            grant["account_id"] = account_id
        elif config.scopes:
            grant["scope"] = " ".join(config.scopes)
        return self.token_request(config, client, grant)

    def device_authorization_request(
        self, config: AuthConfig, client: Client, scopes: List[str]
    ) -> EndpointRequest:
        """Build the device authorization request (RFC 8628 section 3.1)."""
        url = self.endpoint(
            config, config.device_authorization_url, "device authorization endpoint"
        )
        fields = [("scope", " ".join(scopes))] if scopes else []
        return self._authenticated(client, url, urlencode(fields))

    # -- revocation ------------------------------------------------------

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        """Build a revocation request (RFC 7009).

        The refresh token is revoked when there is one, since that ends the
        whole grant; otherwise the access token.
        """
        url = self.endpoint(
            config, self._revocation_url(config, client), "revocation endpoint"
        )
        if token.refresh_token:
            fields = {"token": token.refresh_token, "token_type_hint": "refresh_token"}
        else:
            fields = {"token": token.access_token, "token_type_hint": "access_token"}
        return self._authenticated(
            client, url, urlencode(fields), secrets=fields.values()
        )

    def _access_token_revocation(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        """Build a form ``token=<access token>`` request with client authentication."""
        url = self.endpoint(
            config, self._revocation_url(config, client), "revocation endpoint"
        )
        body = urlencode({"token": token.access_token})
        return self._authenticated(client, url, body, secrets=[token.access_token])

    def _revocation_url(self, config: AuthConfig, client: Client) -> str:
        if not config.revocation_url:
            raise ConfigurationError(
                f"{config.service}: no revocation endpoint is configured. Set "
                "revocation_url in config.toml to revoke at the service."
            )
        return config.revocation_url.replace("{client_id}", client.client_id)

    # -- helpers ---------------------------------------------------------

    def _authenticated(
        self,
        client: Client,
        url: str,
        body: str,
        *,
        secrets: object = (),
    ) -> EndpointRequest:
        """Apply client authentication to a form-encoded POST."""
        headers = {"Content-Type": FORM, "Accept": "application/json"}
        auth = ClientAuth(client.client_id, client.client_secret, client.auth_method)
        url, headers, body = auth.prepare("POST", url, headers, body)
        carried = tuple(str(value) for value in secrets)  # type: ignore[attr-defined]
        return EndpointRequest(
            "POST",
            url,
            headers=headers,
            content=body.encode(),
            secrets=carried + tuple(filter(None, [client.client_secret])),
        )


def as_json_request(request: EndpointRequest) -> EndpointRequest:
    """Re-encode a form body as a JSON object."""
    fields = dict(parse_qsl((request.content or b"").decode(), keep_blank_values=True))
    request.content = json.dumps(fields).encode()
    request.headers["Content-Type"] = "application/json"
    return request


def split_client(
    config: AuthConfig, token: Optional[StoredToken]
) -> Tuple[Optional[str], Optional[str]]:
    """Return the client ID and secret to use, preferring the configuration.

    A saved token's client is used when the configuration names none, and
    its secret only while the client ID is the same.
    """
    client_id = config.resolved_client_id
    secret = config.resolved_client_secret
    saved_id = token.client_id if token is not None else None
    if saved_id and client_id in (None, saved_id):
        return saved_id, secret or (token.client_secret if token else None)
    return client_id, secret
