"""``AuthConfig``: how to authenticate to one service."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

from ._secrets import SECRET, masked_repr
from .errors import ConfigurationError
from .home import planopticon_home

OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

# Token-endpoint dialects that the ``dialect`` field may name.
DIALECT_NAMES = (
    "standard",
    "zoom",
    "google",
    "microsoft",
    "dropbox",
    "github",
    "notion",
)

# Authorization request parameters that the flow sets itself.
_RESERVED_AUTHORIZE_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)

# A service name becomes part of a file name, so it must not name a directory.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _read_env(name: Optional[str]) -> Optional[str]:
    if not name:
        return None
    return os.environ.get(name) or None


@dataclass(repr=False)
class AuthConfig:
    """Configuration for authenticating to one service.

    The fields up to ``token_path`` are the documented ones, in the documented
    order. The fields after it are optional extensions whose defaults keep the
    documented behaviour.

    Args:
        service: Service identifier, such as ``"zoom"``. It also selects the
            service's token-endpoint dialect unless ``dialect`` is set.
        oauth_authorize_url: Authorization endpoint.
        oauth_token_url: Token endpoint.
        client_id: Client ID, taking precedence over ``client_id_env``.
        client_secret: Client secret, taking precedence over
            ``client_secret_env``.
        client_id_env: Environment variable holding the client ID.
        client_secret_env: Environment variable holding the client secret.
        api_key_env: Environment variable holding an API key for the last
            step of the chain.
        scopes: Scopes to request.
        redirect_uri: Redirect URI of the authorization code flow. A loopback
            ``http://127.0.0.1...`` or ``http://localhost...`` URI starts a
            local listener. With any other URI the user pastes the code.
        account_id: Account ID for the client credentials grant.
        account_id_env: Environment variable holding the account ID.
        token_path: Token file, instead of the PlanOpticon home.
        dialect: Name of the token-endpoint dialect to speak (one of the
            known services, or ``"standard"`` for plain RFC 6749).
        redirect_uri_env: Environment variable that overrides
            ``redirect_uri``.
        tenant: Microsoft tenant: ``common``, ``organizations``,
            ``consumers``, a tenant ID or a domain.
        tenant_env: Environment variable holding the tenant.
        token_endpoint_auth_method: Client authentication at the token
            endpoint: ``client_secret_basic``, ``client_secret_post`` or
            ``none``. By default the dialect decides.
        client_credentials_grant: Grant type of the client credentials step.
            By default the dialect decides: Zoom's ``account_credentials``
            for most services, ``client_credentials`` for Microsoft.
        device_authorization_url: Device authorization endpoint (RFC 8628).
        revocation_url: Token revocation endpoint. ``{client_id}`` in it is
            replaced by the client ID.
        authorize_params: Extra query parameters for the authorization URL,
            added to and overriding the dialect's own.
    """

    service: str
    oauth_authorize_url: Optional[str] = None
    oauth_token_url: Optional[str] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = field(default=None, metadata=SECRET)
    client_id_env: Optional[str] = None
    client_secret_env: Optional[str] = None
    api_key_env: Optional[str] = None
    scopes: List[str] = field(default_factory=list)
    redirect_uri: str = OOB_REDIRECT_URI
    account_id: Optional[str] = None
    account_id_env: Optional[str] = None
    token_path: Optional[Path] = None
    dialect: Optional[str] = None
    redirect_uri_env: Optional[str] = None
    tenant: Optional[str] = None
    tenant_env: Optional[str] = None
    token_endpoint_auth_method: Optional[str] = None
    client_credentials_grant: Optional[str] = None
    device_authorization_url: Optional[str] = None
    revocation_url: Optional[str] = None
    authorize_params: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not self.service:
            raise ConfigurationError(
                f"Invalid service name {self.service!r}: use a non-empty string."
            )
        self.scopes = _coerce_scopes(self.scopes, self.service)
        if self.token_path is not None:
            self.token_path = Path(self.token_path).expanduser()
        reserved = sorted(set(self.authorize_params) & _RESERVED_AUTHORIZE_PARAMS)
        if reserved:
            raise ConfigurationError(
                f"{self.service}: authorize_params must not set {reserved[0]!r}; "
                "it is set from the other fields (scopes, redirect_uri, client_id)."
            )
        if self.dialect is not None and self.dialect not in DIALECT_NAMES:
            raise ConfigurationError(
                f"{self.service}: unknown dialect {self.dialect!r}; use one of "
                f"{', '.join(sorted(DIALECT_NAMES))}."
            )
        if self.token_endpoint_auth_method not in (
            None,
            "client_secret_basic",
            "client_secret_post",
            "none",
        ):
            raise ConfigurationError(
                f"{self.service}: invalid token_endpoint_auth_method "
                f"{self.token_endpoint_auth_method!r}; use client_secret_basic, "
                "client_secret_post or none."
            )

    def __repr__(self) -> str:
        return masked_repr(self)

    @property
    def resolved_client_id(self) -> Optional[str]:
        """Client ID from ``client_id`` or the ``client_id_env`` variable."""
        return self.client_id or _read_env(self.client_id_env)

    @property
    def resolved_client_secret(self) -> Optional[str]:
        """Client secret from ``client_secret`` or ``client_secret_env``."""
        return self.client_secret or _read_env(self.client_secret_env)

    @property
    def resolved_api_key(self) -> Optional[str]:
        """API key from the ``api_key_env`` variable."""
        return _read_env(self.api_key_env)

    @property
    def resolved_account_id(self) -> Optional[str]:
        """Account ID from ``account_id`` or the ``account_id_env`` variable."""
        return self.account_id or _read_env(self.account_id_env)

    @property
    def resolved_token_path(self) -> Path:
        """Token file: ``token_path`` or ``{home}/{service}_token.json``.

        The home is ``$PLANOPTICON_HOME`` when set, else ``~/.planopticon``.

        Raises:
            ConfigurationError: ``token_path`` is unset and the service name
                cannot be part of a file name.
        """
        if self.token_path is not None:
            return Path(self.token_path)
        if not _SERVICE_NAME.match(self.service):
            raise ConfigurationError(
                f"Invalid service name {self.service!r} for a token file name: "
                "use letters, digits, '.', '_' or '-', starting with a letter or "
                "digit, or set token_path."
            )
        return planopticon_home() / f"{self.service}_token.json"

    @property
    def supports_oauth(self) -> bool:
        """Whether both the authorization and the token endpoint are set."""
        return bool(self.oauth_authorize_url and self.oauth_token_url)

    @property
    def resolved_redirect_uri(self) -> str:
        """Redirect URI from the ``redirect_uri_env`` variable or the field."""
        return _read_env(self.redirect_uri_env) or self.redirect_uri

    @property
    def resolved_tenant(self) -> Optional[str]:
        """Tenant from ``tenant`` or the ``tenant_env`` variable."""
        return self.tenant or _read_env(self.tenant_env)


def _coerce_scopes(scopes: Union[str, List[str], None], service: str) -> List[str]:
    if scopes is None:
        return []
    if isinstance(scopes, str):
        return scopes.replace(",", " ").split()
    if not all(isinstance(scope, str) for scope in scopes):
        raise ConfigurationError(
            f"{service}: scopes must be a list of strings, got {scopes!r}."
        )
    return list(scopes)
