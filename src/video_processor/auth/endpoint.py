"""Requests to OAuth endpoints: transport guard, retries and response parsing.

Every request has a timeout and verifies TLS. Transient failures (connection
errors, HTTP 5xx and 429, ``temporarily_unavailable``) are retried with a
capped exponential back-off that honours ``Retry-After``. Permanent ones are
raised at once as ``TokenEndpointError``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from . import _clock
from .errors import ConfigurationError, TokenEndpointError

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# Seconds one attempt may take from connecting to reading the last byte.
DEFAULT_TIMEOUT = 15.0
# Total seconds one logical request may spend on retries. An attempt starts
# only inside this budget and ends within ``DEFAULT_TIMEOUT``, so a request
# takes at most 75 s, below the store's 120 s lock timeout: a process holding
# the lock gives up before its waiters do.
DEFAULT_RETRY_BUDGET = 60.0
# Largest response body read; OAuth responses are a few kilobytes.
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
_MAX_DESCRIPTION = 300


@dataclass
class EndpointRequest:
    """One request to an OAuth endpoint, before it is sent."""

    method: str
    url: str
    headers: Dict[str, str] = field(default_factory=dict)
    params: Dict[str, str] = field(default_factory=dict)
    content: Optional[bytes] = None
    # Secret values that the request carries, scrubbed from any error text.
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"EndpointRequest({self.method} {_host(self.url)})"


@dataclass
class HttpSettings:
    """Timeouts and retry limits of endpoint requests."""

    timeout: float = DEFAULT_TIMEOUT
    retry_budget: float = DEFAULT_RETRY_BUDGET
    max_attempts: int = MAX_ATTEMPTS


def is_loopback_host(host: Optional[str]) -> bool:
    """Return whether ``host`` is ``localhost`` or a loopback IP address."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(url: Optional[str], *, service: str, name: str) -> str:
    """Reject an endpoint that is missing or would send secrets in clear text.

    Raises:
        ConfigurationError: ``url`` is empty, not absolute, or plain
            ``http`` to a host other than a loopback address.
    """
    if not url:
        raise ConfigurationError(f"{service}: no {name} is configured.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError:
        raise ConfigurationError(
            f"{service}: the {name} {_host(url)!r} is not a valid URL."
        ) from None
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"{service}: the {name} must not contain a user name or password."
        )
    if re.search(r"[\x00-\x20\x7f]", url):
        raise ConfigurationError(
            f"{service}: the {name} {_host(url)!r} contains spaces or control "
            "characters."
        )
    if parts.scheme.lower() == "https" and parts.hostname:
        return url
    if parts.scheme.lower() == "http" and is_loopback_host(parts.hostname):
        return url
    raise ConfigurationError(
        f"{service}: the {name} {_host(url)!r} must use https (plain http is "
        "accepted only for loopback addresses such as 127.0.0.1)."
    )


def send(
    request: EndpointRequest,
    *,
    settings: Optional[HttpSettings] = None,
    expect_body: bool = True,
) -> Dict[str, Any]:
    """Send ``request``, retrying transient failures, and return the body.

    Args:
        request: The request to send.
        settings: Timeouts and retry limits.
        expect_body: Whether a successful response carries a JSON or
            form-encoded object. Revocation endpoints often respond with an
            empty body.

    Raises:
        TokenEndpointError: The endpoint rejected the request, or kept
            failing until the attempts or the retry budget ran out.
    """
    import httpx

    settings = settings or HttpSettings()
    deadline = time.monotonic() + settings.retry_budget
    attempt = 0
    with httpx.Client(timeout=settings.timeout, follow_redirects=False) as client:
        while True:
            attempt += 1
            try:
                return _send_once(client, request, expect_body, settings.timeout)
            except TokenEndpointError as exc:
                error = exc
            delay = _retry_delay(error, attempt)
            if (
                not error.retryable
                or attempt >= settings.max_attempts
                or time.monotonic() + delay > deadline
            ):
                raise error
            logger.info(
                "Retrying %s %s in %.1f s after %s (attempt %d of %d)",
                request.method,
                _host(request.url),
                delay,
                error.error,
                attempt + 1,
                settings.max_attempts,
            )
            _clock.sleep(delay)


def _read_within(response: httpx.Response, deadline: float) -> httpx.Response:
    """Read the body, giving up at ``deadline`` or past ``MAX_RESPONSE_BYTES``.

    httpx's timeouts bound each read, not the whole body, so a server that
    sends a byte at a time could otherwise hold a caller (and its lock)
    indefinitely.
    """
    chunks = []
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TokenEndpointError(
                "invalid_response",
                f"the response is larger than {MAX_RESPONSE_BYTES} bytes",
                status=response.status_code,
            )
        if time.monotonic() > deadline:
            raise TokenEndpointError(
                "connection_failed", "the response did not arrive in time"
            )
        chunks.append(chunk)
    import httpx

    # A response built from the raw bytes decodes them (gzip and the like)
    # exactly once, as the streamed one would have.
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=b"".join(chunks),
        request=response.request,
    )


def _send_once(
    client: httpx.Client,
    request: EndpointRequest,
    expect_body: bool,
    timeout: float,
) -> Dict[str, Any]:
    import httpx

    logger.debug("%s %s", request.method, _host(request.url))
    try:
        outgoing = client.build_request(
            request.method,
            request.url,
            params=request.params or None,
            headers=request.headers,
            content=request.content,
        )
        streamed = client.send(outgoing, stream=True)
        try:
            response = _read_within(streamed, time.monotonic() + timeout)
        finally:
            streamed.close()
    except httpx.InvalidURL:
        raise ConfigurationError(
            f"the URL {_host(request.url)!r} is not valid for an HTTP request."
        ) from None
    except httpx.DecodingError:
        raise TokenEndpointError(
            "invalid_response", "the response body could not be decoded"
        ) from None
    except httpx.TransportError as exc:
        raise TokenEndpointError(
            "connection_failed",
            _scrub(
                f"{type(exc).__name__} contacting {_host(request.url)}: {exc}",
                request.secrets,
            ),
        ) from None
    logger.debug(
        "%s %s responded with HTTP %d",
        request.method,
        _host(request.url),
        response.status_code,
    )
    return parse_response(response, secrets=request.secrets, expect_body=expect_body)


def parse_response(
    response: httpx.Response,
    *,
    secrets: Iterable[str] = (),
    expect_body: bool = True,
) -> Dict[str, Any]:
    """Decode a JSON or form-encoded body and raise on an ``error`` field.

    The ``error`` field is read before anything else, whatever the HTTP
    status: GitHub reports errors with HTTP 200. Besides the RFC 6749
    section 5.2 shape this reads Zoom's ``reason`` and Notion's
    ``code``/``message`` shapes.

    Raises:
        TokenEndpointError: The body carries an error, the status is not
            2xx, or a body was expected and cannot be decoded.
    """
    data = _decode_body(response)
    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    error = _error_code(data)
    if data is not None and error:
        description = (
            data.get("error_description")
            or data.get("reason")
            or data.get("message")
            or data.get("error_summary")
        )
        raise TokenEndpointError(
            _scrub(error, secrets),
            _scrub(description, secrets) if description else None,
            status=response.status_code,
            retry_after=retry_after,
        )
    if not 200 <= response.status_code < 300:
        raise TokenEndpointError(
            f"http_{response.status_code}",
            response.reason_phrase or None,
            status=response.status_code,
            retry_after=retry_after,
        )
    if data is None:
        if expect_body:
            raise TokenEndpointError(
                "invalid_response",
                f"HTTP {response.status_code} with a body that is neither "
                "JSON nor form-encoded",
                status=response.status_code,
            )
        return {}
    return data


def _decode_body(response: httpx.Response) -> Optional[Dict[str, Any]]:
    text = response.text.strip()
    if not text:
        return None
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            return decoded
        if content_type.endswith("json"):
            return None
    if "=" in text and not text.lstrip().startswith("<"):
        return dict(parse_qsl(text, keep_blank_values=True))
    return None


def _error_code(data: Optional[Dict[str, Any]]) -> Optional[str]:
    if not data:
        return None
    error = data.get("error")
    if isinstance(error, str) and error:
        return error
    if isinstance(error, dict):
        # Some APIs nest the error: Dropbox sends {"error": {".tag": ...}},
        # others {"error": {"code": ..., "message": ...}}.
        return str(
            error.get(".tag") or error.get("code") or error.get("status") or "error"
        )
    if data.get("object") == "error" and data.get("code"):
        return str(data["code"])
    return None


def _retry_delay(error: TokenEndpointError, attempt: int) -> float:
    if error.retry_after is not None:
        return error.retry_after
    import random

    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    # Full jitter keeps processes that failed together from retrying together.
    return random.uniform(backoff / 2, backoff)  # noqa: S311 - not a secret


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    import email.utils

    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - _clock.now())


def _scrub(text: object, secrets: Iterable[str]) -> str:
    """Remove secrets and control characters from text a service sent.

    Each secret is also removed in its URL-encoded and JSON-escaped forms,
    in which a service may echo it.
    """
    cleaned = str(text)
    for secret in secrets:
        if not secret:
            continue
        for form in (
            secret,
            quote(secret, safe=""),
            quote_plus(secret),
            json.dumps(secret)[1:-1],
        ):
            cleaned = cleaned.replace(form, "***")
    cleaned = clean_text(cleaned)
    if len(cleaned) > _MAX_DESCRIPTION:
        cleaned = cleaned[: _MAX_DESCRIPTION - 3] + "..."
    return cleaned


def clean_text(text: str) -> str:
    """Replace control characters (terminal escapes included) with spaces."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]+", " ", text).strip()


def _host(url: str) -> str:
    """Return the scheme, host, port and path of a URL, without credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"
