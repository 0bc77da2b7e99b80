"""Sign-in from another device: the device authorization grant (RFC 8628)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Dict, List, Optional

from .. import _clock
from ..config import AuthConfig
from ..console import Console
from ..dialects import DEVICE_CODE_GRANT, Client, get_dialect
from ..endpoint import HttpSettings, clean_text, send
from ..errors import AuthorizationError, DeviceFlowUnavailableError, TokenEndpointError
from ..token import StoredToken, parse_seconds
from ._client import build_client, request_token

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0  # RFC 8628 section 3.2: when the service sends none
DEFAULT_EXPIRES_IN = 900.0
SLOW_DOWN_STEP = 5.0  # RFC 8628 section 3.5
MIN_INTERVAL = 1.0  # a smaller or negative interval from a service is raised

# Services name the same outcomes differently; these map to RFC 8628 terms.
_DENIED = {"access_denied", "authorization_declined"}
_EXPIRED = {"expired_token", "code_expired", "token_expired"}


def sign_in_with_device_code(
    config: AuthConfig,
    console: Console,
    *,
    timeout: Optional[float] = None,
    settings: Optional[HttpSettings] = None,
) -> StoredToken:
    """Show a user code and verification URL, then poll until approved.

    Args:
        config: The service; ``device_authorization_url`` must be set.
        console: Where the code and URL are shown.
        timeout: Maximum seconds to poll, in addition to the device code's
            own expiry.
        settings: Timeouts and retries of each request.

    Raises:
        ConfigurationError: The service has no device authorization
            endpoint or no client ID.
        DeviceFlowUnavailableError: The service rejected the device
            authorization request, for example for an app without the
            device flow.
        AuthorizationError: The person denied access or the code expired.
        TokenEndpointError: The service rejected a request.
    """
    dialect = get_dialect(config)
    client = build_client(config, dialect, device=True)
    scopes = dialect.authorize_scopes(config)
    request = dialect.device_authorization_request(config, client, scopes)
    try:
        grant = send(request, settings=settings)
    except TokenEndpointError as exc:
        raise DeviceFlowUnavailableError(
            exc.error, exc.description, status=exc.status, retry_after=exc.retry_after
        ) from None
    device_code, interval, expires_in = _parse_device_grant(grant, config.service)

    _show_instructions(console, config.service, grant)
    limit = min(expires_in, timeout or expires_in)
    token = _poll_for_token(
        config, client, device_code, interval, limit, scopes, settings
    )
    console.say(f"Signed in to {config.service}.")
    return token


def _poll_for_token(
    config: AuthConfig,
    client: Client,
    device_code: str,
    interval: float,
    limit: float,
    scopes: List[str],
    settings: Optional[HttpSettings],
) -> StoredToken:
    """Poll the token endpoint every ``interval`` seconds for ``limit`` seconds."""
    dialect = get_dialect(config)
    deadline = time.monotonic() + limit
    # One attempt per poll: the loop itself waits and retries, and must see
    # slow_down even when a service sends it with HTTP 429.
    settings = dataclasses.replace(settings or HttpSettings(), max_attempts=1)
    grant = {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
    while True:
        _clock.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            raise AuthorizationError(
                f"{config.service}: the device code expired, or no approval "
                f"arrived within {limit:g} s. Run the sign-in again."
            )
        poll = dialect.token_request(config, client, grant)
        try:
            return request_token(
                poll,
                client,
                method="device_code",
                settings=settings,
                requested_scopes=scopes,
            )
        except TokenEndpointError as exc:
            interval = _next_interval(exc, interval, config.service)


def _parse_device_grant(
    grant: Dict[str, Any], service: str
) -> tuple[str, float, float]:
    device_code = grant.get("device_code")
    user_code = grant.get("user_code")
    if not device_code or not user_code or not _verification_uri(grant):
        raise TokenEndpointError(
            "invalid_response",
            f"{service}: the device authorization response lacks device_code, "
            "user_code or verification_uri",
        )
    try:
        interval = parse_seconds(grant.get("interval"), "interval") or DEFAULT_INTERVAL
        interval = max(MIN_INTERVAL, interval)
        expires_in = (
            parse_seconds(grant.get("expires_in"), "expires_in") or DEFAULT_EXPIRES_IN
        )
    except ValueError as exc:
        raise TokenEndpointError("invalid_response", f"{service}: {exc}") from None
    return str(device_code), interval, expires_in


def _verification_uri(grant: Dict[str, Any]) -> Optional[str]:
    # Google's device endpoint names the field verification_url.
    value = grant.get("verification_uri") or grant.get("verification_url")
    return clean_text(str(value)) if value else None


def _show_instructions(console: Console, service: str, grant: Dict[str, Any]) -> None:
    uri = _verification_uri(grant)
    console.say(
        f"To sign in to {service}, open this URL on any device:\n\n    {uri}\n\n"
        f"and enter the code:  {clean_text(str(grant['user_code']))}\n"
    )
    complete = grant.get("verification_uri_complete")
    if complete:
        console.say(
            "Or open this URL, which carries the code:\n\n"
            f"    {clean_text(str(complete))}\n"
        )
    console.say("Waiting for approval...")


def _next_interval(error: TokenEndpointError, interval: float, service: str) -> float:
    """Return the next polling interval, or raise if polling must stop."""
    if error.error == "authorization_pending":
        return interval
    if error.error == "slow_down":
        logger.debug(
            "Device flow: slow_down, polling every %.0f s", interval + SLOW_DOWN_STEP
        )
        return interval + SLOW_DOWN_STEP
    if error.error in _DENIED:
        raise AuthorizationError(
            f"{service}: the sign-in was denied on the verification page. Run it "
            "again and approve the request."
        )
    if error.retryable:
        logger.debug("Device flow: %s, polling again", error.error)
        return interval
    if error.error in _EXPIRED:
        raise AuthorizationError(
            f"{service}: the device code expired before the sign-in was "
            "approved. Run the sign-in again."
        )
    raise error
