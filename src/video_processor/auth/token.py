"""The token record saved to disk and returned by every flow."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

from . import _clock
from ._secrets import SECRET, masked_repr

logger = logging.getLogger(__name__)

# Seconds subtracted from a token's lifetime when computing ``expires_at``, so
# that a token handed out still has at least this long to live. A token that
# lives less than twice as long gets half its lifetime as margin instead, so
# that it is not refreshed at every use.
EXPIRY_MARGIN = 60.0

_KNOWN_KEYS = (
    "access_token",
    "refresh_token",
    "expires_at",
    "client_id",
    "client_secret",
    "scope",
    "token_type",
    "method",
    "obtained_at",
)


@dataclass(repr=False)
class StoredToken:
    """A token as saved in ``{service}_token.json``.

    ``expires_at`` already includes ``EXPIRY_MARGIN``; ``None`` means the
    service issued the token without an expiry. ``scope`` is the granted
    scope, space-separated. ``extra`` keeps fields this version does not know,
    so that rewriting a file loses nothing.
    """

    access_token: str = field(metadata=SECRET)
    refresh_token: Optional[str] = field(default=None, metadata=SECRET)
    expires_at: Optional[float] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = field(default=None, metadata=SECRET)
    scope: Optional[str] = None
    token_type: Optional[str] = None
    method: Optional[str] = None
    obtained_at: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict, metadata=SECRET)

    def __repr__(self) -> str:
        return masked_repr(self)

    def is_fresh(self) -> bool:
        """Return whether the token can be handed out without a refresh."""
        return self.expires_at is None or _clock.now() < self.expires_at

    def to_json(self) -> Dict[str, Any]:
        """Return the JSON object written to the token file."""
        data: Dict[str, Any] = dict(self.extra)
        for key in _KNOWN_KEYS:
            data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Any) -> StoredToken:
        """Validate a token file's JSON object.

        Raises:
            ValueError: The object lacks an access token or has a field of
                the wrong type. The message names the field, never a value.
        """
        if not isinstance(data, dict):
            raise ValueError("the file does not contain a JSON object")
        access_token = data.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("access_token is missing or not a string")
        for key in ("refresh_token", "client_id", "client_secret", "scope"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"{key} is not a string")
        for key in ("token_type", "method"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"{key} is not a string")
        extra = {key: value for key, value in data.items() if key not in _KNOWN_KEYS}
        return cls(
            access_token=access_token,
            refresh_token=data.get("refresh_token") or None,
            expires_at=parse_seconds(data.get("expires_at"), "expires_at"),
            client_id=data.get("client_id") or None,
            client_secret=data.get("client_secret") or None,
            scope=data.get("scope") or None,
            token_type=data.get("token_type"),
            method=data.get("method"),
            obtained_at=parse_seconds(data.get("obtained_at"), "obtained_at"),
            extra=extra,
        )

    @classmethod
    def from_response(
        cls,
        response: Mapping[str, Any],
        *,
        method: str,
        client_id: Optional[str],
        client_secret: Optional[str],
        requested_scopes: Sequence[str] = (),
        previous: Optional[StoredToken] = None,
    ) -> StoredToken:
        """Build a token from a token endpoint's successful response.

        A response without ``refresh_token`` keeps ``previous``'s, and one
        without ``scope`` keeps the previous or the requested scope, as
        RFC 6749 section 5.1 allows. A response without ``expires_in``, or
        with one that is not a number, gives a token that does not expire.

        Raises:
            ValueError: The response has no access token, or a refresh token
                that is not a string.
        """
        access_token = response.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("the response contains no access_token")
        refresh_token = response.get("refresh_token") or None
        if refresh_token is not None and not isinstance(refresh_token, str):
            raise ValueError("the response's refresh_token is not a string")
        if refresh_token is None and previous is not None:
            refresh_token = previous.refresh_token
        issued_at = _clock.now()
        expires_at = _expiry(response.get("expires_in"), issued_at)
        scope = normalize_scope(response.get("scope"))
        if scope is None:
            scope = previous.scope if previous else " ".join(requested_scopes) or None

        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            token_type=_string_or_none(response.get("token_type")),
            method=method,
            obtained_at=issued_at,
        )


def _expiry(expires_in: Any, issued_at: float) -> Optional[float]:
    """Return ``expires_at`` for a lifetime in seconds, with the margin."""
    try:
        lifetime = parse_seconds(expires_in, "expires_in")
    except ValueError:
        logger.warning(
            "Ignoring an expires_in that is not a number; the token is kept "
            "until the service rejects it."
        )
        return None
    if lifetime is None:
        return None
    lifetime = max(0.0, lifetime)
    return issued_at + lifetime - min(EXPIRY_MARGIN, lifetime / 2)


def _string_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def parse_seconds(value: Any, name: str) -> Optional[float]:
    """Coerce a number of seconds that may arrive as a string.

    Raises:
        ValueError: The value is neither a finite number nor a numeric string.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} is not a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} is not a number")
    return float(value)


def normalize_scope(value: Any) -> Optional[str]:
    """Return a granted scope as one space-separated string.

    Services separate scopes with spaces (RFC 6749 section 3.3), commas
    (GitHub) or send a JSON list.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [str(item) for item in value]
    else:
        parts = str(value).replace(",", " ").split()
    return " ".join(parts) or None
