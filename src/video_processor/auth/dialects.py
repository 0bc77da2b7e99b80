"""Request and response conventions of each service's OAuth endpoints.

A dialect turns a grant into an ``EndpointRequest`` (client authentication,
body encoding, headers) and adds the authorization URL parameters that a
lasting sign-in needs. ``Dialect`` itself is plain RFC 6749 and is used for
any service that is not one of the known six. The dialect follows the
config's ``dialect`` field or its ``service`` name, never the endpoint's
host, so a proxy, an enterprise host or a test server speaks the same
dialect as the service it stands for.
"""

from __future__ import annotations

import json
import re
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from .config import OOB_REDIRECT_URI, AuthConfig
from .endpoint import EndpointRequest, check_endpoint
from .errors import ConfigurationError
from .token import StoredToken

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = "application/x-www-form-urlencoded"


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
    # Whether the service takes the out-of-band redirect URI. Unknown
    # services get the benefit of the doubt.
    accepts_oob_redirect = True
    # Whether a machine with no browser signs in with the device flow when
    # the config has a device authorization endpoint.
    device_flow_when_headless = True

    # -- client authentication -------------------------------------------

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        """Return how the client authenticates at the token endpoint."""
        if config.token_endpoint_auth_method:
            return config.token_endpoint_auth_method
        return "client_secret_basic" if secret else "none"

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
        """Return extra authorization URL parameters the service needs."""
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
        return self._authenticated(client, url, body, secrets=grant.values())

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


class ZoomDialect(Dialect):
    """Zoom: HTTP Basic client authentication, always; grants in the query.

    Zoom's OAuth documentation passes grant parameters in the query string
    and assumes ``plain`` PKCE when the method is omitted, which the
    authorization request never does.
    """

    name = "zoom"
    accepts_oob_redirect = False

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        return config.token_endpoint_auth_method or "client_secret_basic"

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


class GoogleDialect(Dialect):
    """Google: offline access, body client authentication, loopback redirect.

    A refresh token is issued only with ``access_type=offline``, and again
    after the first consent only with ``prompt=consent`` (Google's OAuth 2.0
    for web server applications, "Refresh the access token (offline
    access)"). Google blocks the out-of-band redirect since 2023-01-31.
    """

    name = "google"
    accepts_oob_redirect = False
    # Google's device flow serves only "TVs and Limited Input" clients and a
    # short list of scopes that excludes Drive, so a headless machine uses the
    # pasted redirect URL instead unless the device flow is requested.
    device_flow_when_headless = False

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        if config.token_endpoint_auth_method:
            return config.token_endpoint_auth_method
        return "client_secret_post" if secret else "none"

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


class MicrosoftDialect(Dialect):
    """Microsoft identity platform v2.0.

    A registration is public or confidential, and the token endpoint rejects
    a secret from a public client (AADSTS700025) and requires one from a
    confidential client (AADSTS7000218), so a secret is sent exactly when one
    is configured. A refresh token comes only with the ``offline_access``
    scope. The tenant in the endpoint path decides who can sign in.
    """

    name = "microsoft"
    accepts_oob_redirect = False
    client_credentials_grant = "client_credentials"
    graph_default_scope = "https://graph.microsoft.com/.default"
    _tenant_segment = re.compile(r"^/([^/]+)/oauth2/")

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        if config.token_endpoint_auth_method:
            return config.token_endpoint_auth_method
        return "client_secret_post" if secret else "none"

    def check_redirect_uri(self, config: AuthConfig, redirect_uri: str) -> None:
        super().check_redirect_uri(config, redirect_uri)
        if urlsplit(redirect_uri).hostname == "::1":
            raise ConfigurationError(
                f"microsoft: the redirect URI {redirect_uri} is not supported: "
                "Microsoft does not accept [::1]. Use http://localhost (set "
                "MICROSOFT_REDIRECT_URI)."
            )

    def endpoint(self, config: AuthConfig, url: Optional[str], name: str) -> str:
        url = super().endpoint(config, url, name)
        tenant = config.resolved_tenant
        return with_tenant(url, tenant) if tenant else url

    def authorize_scopes(self, config: AuthConfig) -> List[str]:
        scopes = list(config.scopes)
        if "offline_access" not in scopes:
            scopes.append("offline_access")
        return scopes

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        return {"response_mode": "query"}

    def token_request(
        self, config: AuthConfig, client: Client, grant: Dict[str, str]
    ) -> EndpointRequest:
        if grant.get("grant_type") in ("authorization_code", "refresh_token"):
            grant = {**grant, "scope": " ".join(self.authorize_scopes(config))}
        return super().token_request(config, client, grant)

    def client_credentials_request(
        self, config: AuthConfig, client: Client, account_id: str
    ) -> EndpointRequest:
        """Build the app-only request against the tenant in ``account_id``.

        App-only tokens need a specific tenant, never ``common``, and the
        ``.default`` scope of one resource; they carry no refresh token.
        """
        if account_id in ("common", "organizations", "consumers"):
            raise ConfigurationError(
                f"microsoft: app-only sign-in needs a tenant ID or domain, not "
                f"{account_id!r}. Set MICROSOFT_TENANT_ID to your tenant's ID."
            )
        url = with_tenant(
            super().endpoint(config, config.oauth_token_url, "token endpoint"),
            account_id,
        )
        grant_type = config.client_credentials_grant or self.client_credentials_grant
        scopes = [s for s in config.scopes if s.endswith("/.default")]
        body = prepare_token_request(
            grant_type, scope=" ".join(scopes) or self.graph_default_scope
        )
        return self._authenticated(client, url, body)

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        if config.revocation_url:
            return super().revocation_request(config, client, token)
        raise ConfigurationError(
            "microsoft: the Microsoft identity platform has no token revocation "
            "endpoint. The refresh token stays valid until it expires or is "
            "revoked from the account's security settings (for work accounts, "
            "by an administrator with 'Revoke sessions')."
        )


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


class GitHubDialect(Dialect):
    """GitHub: JSON on request, errors with HTTP 200, a non-standard revocation.

    The token endpoint responds form-encoded unless asked for JSON, which
    every request here does; ``endpoint.parse_response`` reads both and finds
    errors at any status. The device flow sends no secret. Revocation is
    ``DELETE /applications/{client_id}/token`` with Basic authentication and a
    JSON body (GitHub's REST API, "OAuth authorizations").
    """

    name = "github"
    accepts_oob_redirect = False

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        if config.token_endpoint_auth_method:
            return config.token_endpoint_auth_method
        return "client_secret_post" if secret else "none"

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


class NotionDialect(Dialect):
    """Notion: HTTP Basic client authentication and a JSON body.

    Notion's token endpoint takes JSON, not a form, needs the secret at every
    call, supports no PKCE, and wants ``owner=user`` on the authorization URL.
    """

    name = "notion"
    accepts_oob_redirect = False
    uses_pkce = False

    def client_auth_method(self, config: AuthConfig, secret: Optional[str]) -> str:
        return config.token_endpoint_auth_method or "client_secret_basic"

    def authorize_params(self, config: AuthConfig) -> Dict[str, str]:
        return {"owner": "user"}

    def token_request(
        self, config: AuthConfig, client: Client, grant: Dict[str, str]
    ) -> EndpointRequest:
        return _as_json(super().token_request(config, client, grant))

    def revocation_request(
        self, config: AuthConfig, client: Client, token: StoredToken
    ) -> EndpointRequest:
        return _as_json(self._access_token_revocation(config, client, token))


def _as_json(request: EndpointRequest) -> EndpointRequest:
    """Re-encode a form body as a JSON object."""
    fields = dict(parse_qsl((request.content or b"").decode(), keep_blank_values=True))
    request.content = json.dumps(fields).encode()
    request.headers["Content-Type"] = "application/json"
    return request


def with_tenant(url: str, tenant: str) -> str:
    """Replace the tenant segment of a Microsoft identity platform URL."""
    parts = urlsplit(url)
    match = MicrosoftDialect._tenant_segment.match(parts.path)
    if not match:
        return url
    path = f"/{tenant}" + parts.path[match.end(1) :]
    return urlunsplit(parts._replace(path=path))


DIALECTS: Dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect(),
        ZoomDialect(),
        GoogleDialect(),
        MicrosoftDialect(),
        DropboxDialect(),
        GitHubDialect(),
        NotionDialect(),
    )
}


def get_dialect(config: AuthConfig) -> Dialect:
    """Return the dialect named by ``config.dialect`` or its service.

    Raises:
        ConfigurationError: ``config.dialect`` names no known dialect.
    """
    if config.dialect:
        try:
            return DIALECTS[config.dialect]
        except KeyError:
            raise ConfigurationError(
                f"{config.service}: unknown dialect {config.dialect!r}; use one "
                f"of {', '.join(sorted(DIALECTS))}."
            ) from None
    return DIALECTS.get(config.service, DIALECTS["standard"])


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
