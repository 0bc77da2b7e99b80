"""The Microsoft identity platform's OAuth dialect."""

from __future__ import annotations

import re
from typing import Dict, List, Optional
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749.parameters import prepare_token_request

from ..config import AuthConfig
from ..endpoint import EndpointRequest
from ..errors import ConfigurationError
from ..token import StoredToken
from ._base import Client, Dialect


class MicrosoftDialect(Dialect):
    """Microsoft identity platform v2.0.

    A registration is public or confidential, and the token endpoint rejects
    a secret from a public client (AADSTS700025) and requires one from a
    confidential client (AADSTS7000218), so a secret is sent exactly when one
    is configured. A refresh token comes only with the ``offline_access``
    scope. The tenant in the endpoint path decides who can sign in.
    """

    name = "microsoft"
    secret_auth_method = "client_secret_post"
    accepts_oob_redirect = False
    client_credentials_grant = "client_credentials"
    graph_default_scope = "https://graph.microsoft.com/.default"
    _tenant_segment = re.compile(r"^/([^/]+)/oauth2/")

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


def with_tenant(url: str, tenant: str) -> str:
    """Replace the tenant segment of a Microsoft identity platform URL."""
    parts = urlsplit(url)
    match = MicrosoftDialect._tenant_segment.match(parts.path)
    if not match:
        return url
    path = f"/{tenant}" + parts.path[match.end(1) :]
    return urlunsplit(parts._replace(path=path))
