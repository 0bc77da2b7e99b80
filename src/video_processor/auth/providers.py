"""The six known services, and configuration from ``config.toml``.

``KNOWN_CONFIGS`` contains the documented endpoints, variable names and scopes.
Where a documented value cannot work with the service, the entry differs and
a comment gives the reason. Google, Microsoft, GitHub, Zoom and Notion reject
the out-of-band redirect URI, so their entries use a loopback redirect.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .config import AuthConfig
from .errors import ConfigurationError
from .home import config_file_path, load_service_tables

logger = logging.getLogger(__name__)

# Zoom and Notion match redirect URIs exactly against the app's allow list,
# so their default must be registered there; both accept a loopback URI.
REGISTERED_LOOPBACK_REDIRECT = "http://127.0.0.1:8765/callback"

KNOWN_CONFIGS: Dict[str, AuthConfig] = {
    "zoom": AuthConfig(
        service="zoom",
        oauth_authorize_url="https://zoom.us/oauth/authorize",
        oauth_token_url="https://zoom.us/oauth/token",
        client_id_env="ZOOM_CLIENT_ID",
        client_secret_env="ZOOM_CLIENT_SECRET",
        account_id_env="ZOOM_ACCOUNT_ID",
        redirect_uri=REGISTERED_LOOPBACK_REDIRECT,
        redirect_uri_env="ZOOM_REDIRECT_URI",
        device_authorization_url="https://zoom.us/oauth/devicecode",
        revocation_url="https://zoom.us/oauth/revoke",
    ),
    "notion": AuthConfig(
        service="notion",
        oauth_authorize_url="https://api.notion.com/v1/oauth/authorize",
        oauth_token_url="https://api.notion.com/v1/oauth/token",
        client_id_env="NOTION_CLIENT_ID",
        client_secret_env="NOTION_CLIENT_SECRET",
        api_key_env="NOTION_API_KEY",
        redirect_uri=REGISTERED_LOOPBACK_REDIRECT,
        redirect_uri_env="NOTION_REDIRECT_URI",
        revocation_url="https://api.notion.com/v1/oauth/revoke",
    ),
    "dropbox": AuthConfig(
        service="dropbox",
        oauth_authorize_url="https://www.dropbox.com/oauth2/authorize",
        oauth_token_url="https://api.dropboxapi.com/oauth2/token",
        client_id_env="DROPBOX_APP_KEY",
        client_secret_env="DROPBOX_APP_SECRET",
        api_key_env="DROPBOX_ACCESS_TOKEN",
        # The out-of-band URI stays: Dropbox then shows the code to paste.
        redirect_uri_env="DROPBOX_REDIRECT_URI",
        revocation_url="https://api.dropboxapi.com/2/auth/token/revoke",
    ),
    "github": AuthConfig(
        service="github",
        oauth_authorize_url="https://github.com/login/oauth/authorize",
        oauth_token_url="https://github.com/login/oauth/access_token",
        client_id_env="GITHUB_CLIENT_ID",
        client_secret_env="GITHUB_CLIENT_SECRET",
        api_key_env="GITHUB_TOKEN",
        scopes=["repo", "read:org"],
        # A callback registered as http://127.0.0.1/callback accepts any port.
        redirect_uri="http://127.0.0.1/callback",
        redirect_uri_env="GITHUB_REDIRECT_URI",
        device_authorization_url="https://github.com/login/device/code",
        revocation_url="https://api.github.com/applications/{client_id}/token",
    ),
    "google": AuthConfig(
        service="google",
        oauth_authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        oauth_token_url="https://oauth2.googleapis.com/token",
        client_id_env="GOOGLE_CLIENT_ID",
        client_secret_env="GOOGLE_CLIENT_SECRET",
        api_key_env="GOOGLE_API_KEY",
        scopes=[
            "https://www.googleapis.com/auth/drive.readonly",
            "https://www.googleapis.com/auth/documents.readonly",
        ],
        # Desktop clients may use any loopback port without registering it.
        redirect_uri="http://127.0.0.1",
        redirect_uri_env="GOOGLE_REDIRECT_URI",
        device_authorization_url="https://oauth2.googleapis.com/device/code",
        revocation_url="https://oauth2.googleapis.com/revoke",
    ),
    "microsoft": AuthConfig(
        service="microsoft",
        oauth_authorize_url=(
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
        ),
        oauth_token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        client_id_env="MICROSOFT_CLIENT_ID",
        client_secret_env="MICROSOFT_CLIENT_SECRET",
        scopes=[
            "https://graph.microsoft.com/OnlineMeetings.Read",
            "https://graph.microsoft.com/Files.Read",
        ],
        # The port of a localhost redirect is ignored in matching.
        redirect_uri="http://localhost",
        redirect_uri_env="MICROSOFT_REDIRECT_URI",
        account_id_env="MICROSOFT_TENANT_ID",
        tenant_env="MICROSOFT_TENANT",
        device_authorization_url=(
            "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"
        ),
    ),
}

# Names of `planopticon auth` subcommands, which cannot name a service.
RESERVED_NAMES = frozenset({"status", "token"})

_FIELD_TYPES = {field.name: field for field in dataclasses.fields(AuthConfig)}
_LIST_FIELDS = {"scopes"}
_DICT_FIELDS = {"authorize_params"}


def get_auth_config(service: str) -> Optional[AuthConfig]:
    """Get a pre-built AuthConfig for a known service.

    The result is a copy of the ``KNOWN_CONFIGS`` entry with any
    ``[services.NAME]`` table of ``config.toml`` applied, so changing it
    changes nothing else. A service defined only in ``config.toml`` is
    returned too.

    Returns:
        The config, or ``None`` if no such service is known or configured.

    When ``config.toml`` is invalid, a known service falls back to its
    built-in settings with a warning.

    Raises:
        ConfigurationError: ``config.toml`` is invalid and ``service`` is not
            one of the known services.
    """
    try:
        return load_auth_config(service)
    except ConfigurationError as exc:
        base = KNOWN_CONFIGS.get(service)
        if base is None:
            raise
        logger.warning("Using the built-in %s settings: %s", service, exc)
        return _copy(base, {})


def load_auth_config(service: str) -> Optional[AuthConfig]:
    """Like ``get_auth_config``, but raise for an invalid ``config.toml``.

    Raises:
        ConfigurationError: ``config.toml`` cannot be read or is invalid.
    """
    table = load_service_tables().get(service)
    base = KNOWN_CONFIGS.get(service)
    if base is None and table is None:
        return None
    if base is None:
        if service in RESERVED_NAMES:
            raise ConfigurationError(
                f"{config_file_path()}: [services.{service}] uses a name reserved "
                f"for a command of `planopticon auth`; choose another name."
            )
        return AuthConfig(service=service, **_parse_table(service, table or {}))
    return _copy(base, _parse_table(service, table) if table else {})


def _copy(base: AuthConfig, overrides: Dict[str, Any]) -> AuthConfig:
    """Copy a known config, lists and tables included, with ``overrides``."""
    values: Dict[str, Any] = {
        "scopes": list(base.scopes),
        "authorize_params": dict(base.authorize_params),
    }
    values.update(overrides)
    return dataclasses.replace(base, **values)


def configured_services() -> list[str]:
    """Return the known services followed by those only in ``config.toml``."""
    extra = sorted(set(load_service_tables()) - set(KNOWN_CONFIGS))
    return [*KNOWN_CONFIGS, *extra]


def _parse_table(service: str, table: Mapping[str, Any]) -> Dict[str, Any]:
    """Check a ``[services.NAME]`` table against the AuthConfig fields."""
    where = f"{config_file_path()} [services.{service}]"
    values: Dict[str, Any] = {}
    for key, value in table.items():
        if key == "service" or key not in _FIELD_TYPES:
            valid = ", ".join(name for name in _FIELD_TYPES if name != "service")
            raise ConfigurationError(
                f"{where}: unknown key {key!r}. Valid keys: {valid}."
            )
        if key in _LIST_FIELDS:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if not (ok or isinstance(value, str)):
                raise ConfigurationError(f"{where}: {key} must be a list of strings.")
        elif key in _DICT_FIELDS:
            if not isinstance(value, dict) or not all(
                isinstance(v, str) for v in value.values()
            ):
                raise ConfigurationError(f"{where}: {key} must be a table of strings.")
        elif not isinstance(value, str):
            raise ConfigurationError(
                f"{where}: {key} must be a string, got {type(value).__name__}."
            )
        values[key] = Path(value).expanduser() if key == "token_path" else value
    return values
