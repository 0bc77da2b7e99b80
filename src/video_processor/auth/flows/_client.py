"""The client identity shared by every flow."""

from __future__ import annotations

from typing import Optional

from ..config import AuthConfig
from ..dialects import Client, Dialect, split_client
from ..errors import ConfigurationError
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
