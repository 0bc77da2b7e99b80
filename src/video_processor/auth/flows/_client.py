"""The client identity shared by every flow."""

from __future__ import annotations

from typing import Optional, Sequence

from ..config import AuthConfig
from ..dialects import Client, Dialect, split_client
from ..endpoint import EndpointRequest, HttpSettings, send
from ..errors import ConfigurationError, TokenEndpointError
from ..token import StoredToken


def build_client(
    config: AuthConfig,
    dialect: Dialect,
    *,
    token: Optional[StoredToken] = None,
    device: bool = False,
) -> Client:
    """Resolve the client ID, secret and authentication method.

    Raises:
        ConfigurationError: No client ID is configured.
    """
    client_id, secret = split_client(config, token)
    if not client_id:
        raise ConfigurationError(
            f"{config.service}: no client ID is configured."
            + set_hint(config.client_id_env)
        )
    if device:
        method = dialect.device_auth_method(config, secret)
    else:
        method = dialect.client_auth_method(config, secret)
    if method != "none" and not secret:
        raise ConfigurationError(
            f"{config.service}: the client authenticates with {method}, which "
            "needs a client secret, and none is configured."
            + set_hint(config.client_secret_env)
        )
    return Client(client_id, secret if method != "none" else None, method)


def set_hint(variable: Optional[str]) -> str:
    """Return " Set VARIABLE." for an error message, or "" without a name."""
    return f" Set {variable}." if variable else ""


def request_token(
    request: EndpointRequest,
    client: Client,
    *,
    method: str,
    settings: Optional[HttpSettings] = None,
    requested_scopes: Sequence[str] = (),
    previous: Optional[StoredToken] = None,
) -> StoredToken:
    """Send a token request and build the token from the response.

    Raises:
        TokenEndpointError: The service rejected the request, or its
            response has no usable access token (``invalid_response``).
    """
    response = send(request, settings=settings)
    try:
        return StoredToken.from_response(
            response,
            method=method,
            client_id=client.client_id,
            client_secret=client.client_secret,
            requested_scopes=requested_scopes,
            previous=previous,
        )
    except ValueError as exc:
        raise TokenEndpointError("invalid_response", str(exc)) from None
