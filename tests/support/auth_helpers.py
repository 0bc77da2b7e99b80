"""Small helpers shared by tests that sign in through the product."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, urlsplit

from support.idp import IdentityProvider
from video_processor.auth import AuthConfig

IDP_SCOPES = ["openid", "offline_access", "read"]


def idp_config(
    idp: IdentityProvider,
    client_id: str,
    *,
    redirect_uri: str = "http://127.0.0.1/callback",
    **fields: Any,
) -> AuthConfig:
    """Build a standard-dialect config for one of the test server's clients."""
    client = idp.clients[client_id]
    values: dict[str, Any] = {
        "service": "idp",
        "oauth_authorize_url": idp.authorization_endpoint,
        "oauth_token_url": idp.token_endpoint,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "scopes": list(IDP_SCOPES),
        "redirect_uri": redirect_uri,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "device_authorization_url": idp.device_authorization_endpoint,
        "revocation_url": idp.revocation_endpoint,
    }
    values.update(fields)
    return AuthConfig(**values)


class TypedInput(io.TextIOBase):
    """Standard input of a person who types one line once the browser is done.

    ``line_from`` builds the line when it is first read, because the line
    (a code or a redirected URL) exists only after the browser step.
    """

    def __init__(self, line_from: Callable[[], Optional[str]]) -> None:
        self._line_from = line_from
        self.reads = 0

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        self.reads += 1
        if self.reads > 1:
            return ""
        line = self._line_from()
        return "" if line is None else line + "\n"


class UnreadableInput(io.TextIOBase):
    """Standard input that fails the test if anything reads it."""

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise AssertionError("the product read standard input")


def query_of(url: str) -> dict[str, str]:
    """Return the query parameters of a URL."""
    return dict(parse_qsl(urlsplit(url).query))


def expire_saved_token(path: Path) -> dict[str, Any]:
    """Move a saved token's expiry into the past and return the file's JSON."""
    data = json.loads(path.read_text())
    data["expires_at"] = 1.0
    path.write_text(json.dumps(data))
    return data


def write_service_table(home: Path, service: str, fields: dict[str, Any]) -> Path:
    """Append a ``[services.NAME]`` table to ``config.toml`` in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    lines = [f"[services.{service}]"]
    for key, value in fields.items():
        if value is None:
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n")
    return path


def idp_service_table(
    idp: IdentityProvider, client_id: str, **fields: Any
) -> dict[str, Any]:
    """Return ``config.toml`` keys for one of the test server's clients."""
    config = idp_config(idp, client_id, **fields)
    keys = (
        "oauth_authorize_url",
        "oauth_token_url",
        "client_id",
        "client_secret",
        "scopes",
        "redirect_uri",
        "token_endpoint_auth_method",
        "device_authorization_url",
        "revocation_url",
        "api_key_env",
        "account_id",
        "client_credentials_grant",
    )
    return {key: getattr(config, key) for key in keys}
