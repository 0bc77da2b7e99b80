"""Unified authentication for PlanOpticon's source connectors.

Tries a saved token (refreshed when due), the client credentials grant, an
interactive OAuth sign-in with PKCE, and an API key from the environment, in
that order. Tokens are saved under ``~/.planopticon/`` (or
``$PLANOPTICON_HOME``).
"""

from .config import AuthConfig
from .manager import OAuthManager
from .providers import KNOWN_CONFIGS, get_auth_config
from .result import AuthResult


def get_auth_manager(service: str) -> "OAuthManager | None":
    """Get an OAuthManager for a known service, or ``None`` if unknown."""
    config = get_auth_config(service)
    if config is None:
        return None
    return OAuthManager(config)


__all__ = [
    "KNOWN_CONFIGS",
    "AuthConfig",
    "AuthResult",
    "OAuthManager",
    "get_auth_config",
    "get_auth_manager",
]
