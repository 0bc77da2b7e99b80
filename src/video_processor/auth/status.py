"""The report of ``planopticon auth status``, as plain data.

``service_status()`` returns one JSON-ready object per service. Its keys
are a stable, documented schema (``SCHEMA_VERSION``); new keys may be added,
existing ones keep their meaning. No value in it is a secret.
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any, Dict, List, Optional

from . import _clock
from .config import AuthConfig
from .token import StoredToken

SCHEMA_VERSION = 1

DISPLAY_NAMES = {
    "zoom": "Zoom",
    "notion": "Notion",
    "dropbox": "Dropbox",
    "github": "GitHub",
    "google": "Google",
    "microsoft": "Microsoft",
}


def display_name(service: str) -> str:
    """Return the service's name as people write it."""
    return DISPLAY_NAMES.get(service, service)


def credential_variables(config: AuthConfig) -> Dict[str, bool]:
    """Map each credential environment variable name to whether it is set."""
    names = [
        config.client_id_env,
        config.client_secret_env,
        config.account_id_env,
        config.api_key_env,
        config.tenant_env,
        config.redirect_uri_env,
    ]
    return {name: bool(os.environ.get(name)) for name in names if name}


def service_status(config: AuthConfig) -> Dict[str, Any]:
    """Describe a service's configuration and saved token without secrets.

    The token file is only read: a corrupt file is reported, not moved.
    """
    path = config.resolved_token_path
    configured = bool(config.resolved_client_id or config.resolved_api_key)
    return {
        "service": config.service,
        "display_name": display_name(config.service),
        "configured": configured,
        "credentials": credential_variables(config),
        "requested_scopes": list(config.scopes),
        "token_path": str(path),
        "token": _token_status(config),
    }


def _token_status(config: AuthConfig) -> Optional[Dict[str, Any]]:
    path = config.resolved_token_path
    try:
        info = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"state": "unreadable", "problem": exc.strerror, "file_mode": None}
    mode = f"{stat.S_IMODE(info.st_mode):04o}"
    try:
        token = StoredToken.from_json(json.loads(raw))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {
            "state": "corrupt",
            "problem": "not a valid token file; it is moved aside at the next sign-in",
            "file_mode": mode,
        }
    return _describe(token, mode)


def _describe(token: StoredToken, mode: str) -> Dict[str, Any]:
    expires_at = token.expires_at
    fresh = expires_at is None or _clock.now() < expires_at
    state = "valid" if fresh else "expired"
    return {
        "state": state,
        "method": token.method,
        "expires_at": expires_at,
        "expires_at_utc": _iso(expires_at),
        "expires_in_seconds": None
        if expires_at is None
        else round(expires_at - _clock.now()),
        "refreshable": bool(token.refresh_token),
        "granted_scopes": token.scope.split() if token.scope else [],
        "obtained_at_utc": _iso(token.obtained_at),
        "file_mode": mode,
    }


def _iso(moment: Optional[float]) -> Optional[str]:
    if moment is None:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    except (OverflowError, OSError, ValueError):
        return None  # outside the platform's time range


def status_document(configs: List[AuthConfig], home: str) -> Dict[str, Any]:
    """Return the whole ``status --json`` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "home": home,
        "services": [service_status(config) for config in configs],
    }
