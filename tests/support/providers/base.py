"""Shared machinery of the fake OAuth provider servers used in tests.

Each fake is a ``ThreadingHTTPServer`` on 127.0.0.1 with a free port, served from a
daemon thread. A subclass registers the routes of one service and implements its
endpoints. This module supplies what every fake needs:

- a request log (``ProviderServer.requests``) with the method, path, query, headers,
  raw body and parsed form or JSON body of every request;
- one registered client per server, with an id and secret made by
  ``secrets.token_urlsafe`` so that tests can check that the secret never leaks;
- stores of authorization codes, tokens and device authorizations, with helpers
  such as ``is_access_token_live`` for assertions;
- failure injection (``fail_next``, ``delay_next``) and a settable clock
  (``advance_time``) so that expiry and polling intervals need no sleeping.

Handlers run under one server-wide lock, so the stores need no further
locking. Knobs are plain attributes that handlers read on every request, so a test
may change them after the server has started.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import html
import http
import json
import logging
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
OOB_REDIRECT_URIS = frozenset(
    {"urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto", "oob"}
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Authorization codes of every service modelled here expire within 10 minutes.
AUTHORIZATION_CODE_LIFETIME = 600.0


@dataclass
class RecordedRequest:
    """One HTTP request received by a fake server, as the client sent it."""

    method: str
    path: str
    # Query parameters as parsed by urllib.parse.parse_qs, blank values kept.
    query: dict[str, list[str]]
    # Header names in lower case. Repeated headers are joined with ", ".
    headers: dict[str, str]
    body: bytes
    # Form fields when the body is application/x-www-form-urlencoded, else None.
    form: dict[str, list[str]] | None = None
    # Parsed body when it is application/json and valid JSON, else None.
    json: Any = None
    # Route name such as "token" or "authorize", or None when no route matched.
    endpoint: str | None = None
    # Values captured by the route's path pattern, such as the Microsoft tenant.
    path_args: dict[str, str] = field(default_factory=dict)
    received_at: float = 0.0

    @property
    def content_type(self) -> str:
        """Media type of the body in lower case, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """Return the (user, password) pair of a Basic Authorization header."""
        value = self.headers.get("authorization", "")
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, separator, password = decoded.partition(":")
        if not separator:
            return None
        return user, password

    @property
    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    @property
    def query_params(self) -> dict[str, str]:
        """Return the first value of each query parameter."""
        return {name: values[0] for name, values in self.query.items()}

    @property
    def form_params(self) -> dict[str, str]:
        """Return the first value of each form field, or {} without a form body."""
        if self.form is None:
            return {}
        return {name: values[0] for name, values in self.form.items()}

    @property
    def json_params(self) -> dict[str, Any]:
        """Return the JSON body when it is an object, else {}."""
        return self.json if isinstance(self.json, dict) else {}


@dataclass
class Response:
    """HTTP response that a handler returns to the dispatcher."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> Response:
    all_headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    all_headers.update(headers or {})
    return Response(status, json.dumps(payload).encode("utf-8"), all_headers)


def form_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """Build an application/x-www-form-urlencoded response, as GitHub sends."""
    body = urllib.parse.urlencode({key: str(value) for key, value in payload.items()})
    all_headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Cache-Control": "no-store",
    }
    all_headers.update(headers or {})
    return Response(status, body.encode("utf-8"), all_headers)


def html_response(status: int, title: str, body_html: str) -> Response:
    """Build a small HTML page. ``title`` is escaped and ``body_html`` is not."""
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n"
        f"<body>{body_html}</body></html>\n"
    )
    return Response(
        status, page.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"}
    )


def error_page(status: int, error: str, description: str) -> Response:
    """Build the HTML error page that a browser shows at an authorize endpoint.

    The page contains the text ``Error <status>: <error>``, the form Google uses.
    """
    heading = f"Error {status}: {error}"
    body = f"<h1>{html.escape(heading)}</h1>\n<p>{html.escape(description)}</p>"
    return html_response(status, heading, body)


def redirect_response(location: str) -> Response:
    return Response(302, b"", {"Location": location, "Cache-Control": "no-store"})


def add_query_params(url: str, params: Mapping[str, str | None]) -> str:
    """Append the non-None params to the query string of url."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    pairs.extend((key, value) for key, value in params.items() if value is not None)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(pairs)))


def pkce_s256_challenge(verifier: str) -> str:
    """Return the S256 code challenge of a PKCE code verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_loopback_uri(uri: str) -> bool:
    """Return whether uri is an http URL on 127.0.0.1, localhost or [::1]."""
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def uri_port(uri: str) -> int | None:
    """Return the explicit port of uri, or None when it has none or an invalid one."""
    try:
        return urllib.parse.urlsplit(uri).port
    except ValueError:
        return None


def split_scope(scope: str | None, separators: str = " ") -> tuple[str, ...]:
    """Split a scope string on any of the separator characters, dropping blanks."""
    if not scope:
        return ()
    pattern = "[" + re.escape(separators) + "]+"
    return tuple(item for item in re.split(pattern, scope) if item)


@dataclass
class ClientRegistration:
    """App registered with a fake provider: credentials, redirect URIs and flags."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    # True for a public client (Microsoft "mobile and desktop applications"), which
    # must not send a secret.
    public: bool = False


@dataclass
class AuthorizationCode:
    """Code issued by an authorize endpoint and the request that produced it."""

    value: str
    client_id: str
    user: str
    # The redirect_uri parameter as sent, or None when the request had none.
    redirect_uri: str | None
    # The redirect URI that the code was delivered to.
    effective_redirect_uri: str | None
    # Every authorize query parameter, so that token handlers can check
    # access_type, token_access_type and similar options.
    params: dict[str, str]
    scope: tuple[str, ...]
    code_challenge: str | None
    # The method in force: the one sent, or the service's default when omitted.
    code_challenge_method: str | None
    expires_at: float
    used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenRecord:
    """Access or refresh token issued by a fake server."""

    value: str
    kind: str  # "access" or "refresh"
    client_id: str
    user: str | None
    scope: tuple[str, ...]
    # Tokens from one authorization share a grant id, so a revocation can end all
    # of them together.
    grant_id: str
    issued_at: float
    expires_at: float | None
    revoked: bool = False
    # Set when the token was used up, for example a rotated refresh token.
    used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeviceAuthorization:
    """Pending device-flow sign-in (RFC 8628) and the state of its polling."""

    device_code: str
    user_code: str
    client_id: str
    scope: tuple[str, ...]
    params: dict[str, str]
    expires_at: float
    # Minimum seconds between polls. Each slow_down response adds 5 seconds.
    interval: int
    # "pending", "approved", "denied", "expired" or "redeemed".
    status: str = "pending"
    last_poll_at: float | None = None
    poll_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CannedFailure:
    """Canned response that replaces the normal one for one request to an endpoint."""

    endpoint: str
    status: int | None = None
    error: str | None = None
    description: str | None = None
    retry_after: float | None = None
    drop_connection: bool = False
    delay: float = 0.0
    body: bytes | None = None
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[RecordedRequest], Response]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    provider: ProviderServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes. Without TCP_NODELAY, Nagle's
        # algorithm delays the body until the client's delayed ACK, which Linux
        # sends after at least 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.provider._track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.provider._untrack_connection(self.connection)

    def _dispatch(self) -> None:
        self.server.provider._serve(self)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch
    do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # The request line can contain codes and tokens in its query, so it is
        # not logged. _serve logs the method and path instead.
        pass


class ProviderServer:
    """Base class of the fake OAuth servers: lifecycle, routing, log and stores.

    Subclasses set the class attributes below and register routes in
    ``register_routes``. Construct, then ``start()`` (or use ``with``); the
    pytest fixtures in ``support.provider_fixtures`` do both.
    """

    # Short service name used in logs and messages.
    service = "provider"
    # Redirect URIs registered for the client when the constructor gets none.
    default_redirect_uris: tuple[str, ...] = ("http://127.0.0.1:8765/callback",)
    # Default status of an error response (GitHub overrides it with 200).
    default_error_status = 400
    access_token_prefix = "at-"
    refresh_token_prefix = "rt-"
    # Access token lifetime in seconds, also sent as expires_in.
    access_token_lifetime = 3600

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        access_token_lifetime: int | None = None,
    ) -> None:
        uris = self.default_redirect_uris if redirect_uris is None else redirect_uris
        self.client = ClientRegistration(
            client_id=self.generate_client_id(),
            client_secret=secrets.token_urlsafe(32),
            redirect_uris=list(uris),
        )
        self.clients: dict[str, ClientRegistration] = {
            self.client.client_id: self.client
        }
        if access_token_lifetime is not None:
            self.access_token_lifetime = access_token_lifetime
        # Every request, in the order received.
        self.requests: list[RecordedRequest] = []
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.device_authorizations: dict[str, DeviceAuthorization] = {}
        # Token values named in accepted revocation requests, in order.
        self.revoked_tokens: list[str] = []
        # Exceptions raised by handlers. The fixtures fail a test that leaves any.
        self.handler_errors: list[BaseException] = []
        # User that the auto-approving authorize endpoint signs in.
        self.current_user = "user-1"

        self._lock = threading.RLock()
        self._routes: list[_Route] = []
        self._failures: list[CannedFailure] = []
        self._denials_pending = 0
        self._clock_offset = 0.0
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self.register_routes()

    # ----------------------------------------------------------------- lifecycle

    def generate_client_id(self) -> str:
        return secrets.token_urlsafe(16)

    def register_routes(self) -> None:
        """Register the service's routes with ``add_route``."""
        raise NotImplementedError

    def add_route(
        self, method: str, path_pattern: str, endpoint: str, handler: Handler
    ) -> None:
        """Route requests whose path fully matches path_pattern to handler.

        Named groups in the pattern end up in ``RecordedRequest.path_args``.
        """
        self._routes.append(_Route(method, re.compile(path_pattern), endpoint, handler))

    def start(self) -> ProviderServer:
        if self._httpd is not None:
            raise RuntimeError(f"{self.service} fake server is already running")
        httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        httpd.provider = self
        self._httpd = httpd
        port = httpd.server_address[1]
        self._base_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            # stop() waits up to one poll interval for the loop to notice.
            kwargs={"poll_interval": 0.01},
            name=f"fake-{self.service}-{port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("started fake %s server at %s", self.service, self._base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection, including kept-alive ones."""
        httpd = self._httpd
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        logger.debug("stopped fake %s server at %s", self.service, self._base_url)

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError(f"{self.service} fake server has not been started")
        return self._base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def client_secret(self) -> str:
        return self.client.client_secret

    def add_redirect_uri(self, uri: str) -> None:
        """Register one more redirect URI for the default client."""
        with self._lock:
            self.client.redirect_uris.append(uri)

    # --------------------------------------------------------------------- clock

    def now(self) -> float:
        """Return the server clock in seconds: time.time() plus advance_time calls."""
        return time.time() + self._clock_offset

    def advance_time(self, seconds: float) -> None:
        """Move the server clock forward, to expire tokens or codes without waiting."""
        with self._lock:
            self._clock_offset += seconds

    # ------------------------------------------------------------- request log

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Return the logged requests that the named route handled."""
        with self._lock:
            return [
                request for request in self.requests if request.endpoint == endpoint
            ]

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return self.requests_to("token")

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # --------------------------------------------------------- failure injection

    def fail_next(
        self,
        status: int | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
        retry_after: float | None = None,
        drop_connection: bool = False,
        delay: float = 0.0,
        body: bytes | str | None = None,
        content_type: str = "text/plain; charset=utf-8",
        times: int = 1,
        endpoint: str = "token",
    ) -> None:
        """Respond to the next ``times`` requests to an endpoint with a canned failure.

        - ``error`` gives a body in the service's own error shape, with ``status``
          or else the service's default error status.
        - ``status`` alone gives status 429 the service's rate-limit body and any
          other status a short text body.
        - ``body`` gives exactly that body with ``content_type``.
        - ``retry_after`` adds a Retry-After header in seconds.
        - ``drop_connection`` closes the socket without sending anything.
        - ``delay`` waits that many seconds before responding or dropping.

        Failures queue in order and each one is used once.
        """
        if status is None and error is None and body is None and not drop_connection:
            raise ValueError("fail_next needs status, error, body or drop_connection")
        encoded = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    CannedFailure(
                        endpoint=endpoint,
                        status=status,
                        error=error,
                        description=description,
                        retry_after=retry_after,
                        drop_connection=drop_connection,
                        delay=delay,
                        body=encoded,
                        content_type=content_type,
                    )
                )

    def delay_next(
        self, seconds: float, *, times: int = 1, endpoint: str = "token"
    ) -> None:
        """Wait ``seconds``, then handle the next requests to an endpoint normally."""
        with self._lock:
            for _ in range(times):
                self._failures.append(CannedFailure(endpoint=endpoint, delay=seconds))

    def pending_failures(self) -> int:
        with self._lock:
            return len(self._failures)

    def _take_failure(self, endpoint: str | None) -> CannedFailure | None:
        for index, failure in enumerate(self._failures):
            if failure.endpoint == endpoint:
                return self._failures.pop(index)
        return None

    def _canned_response(
        self, failure: CannedFailure, request: RecordedRequest
    ) -> Response:
        status = (
            failure.status if failure.status is not None else self.default_error_status
        )
        if failure.body is not None:
            response = Response(
                status, failure.body, {"Content-Type": failure.content_type}
            )
        elif failure.error is not None:
            description = failure.description or f"Injected failure: {failure.error}"
            response = self.error_response(
                failure.error, description, status=status, request=request
            )
        elif status == http.HTTPStatus.TOO_MANY_REQUESTS:
            response = self.rate_limited_response(failure.retry_after)
        else:
            phrase = http.HTTPStatus(status).phrase
            response = Response(
                status,
                f"{status} {phrase}\n".encode(),
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        if failure.retry_after is not None:
            response.headers["Retry-After"] = format_retry_after(failure.retry_after)
        return response

    # ----------------------------------------------------- service error shapes

    def error_response(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        request: RecordedRequest | None = None,
    ) -> Response:
        """Build an error in the service's token-endpoint shape.

        The default is the RFC 6749 section 5.2 shape. Subclasses override it, and
        may use ``request`` to pick a format (GitHub reads its Accept header).
        """
        return json_response(
            status if status is not None else self.default_error_status,
            {"error": error, "error_description": description},
        )

    def rate_limited_response(self, retry_after: float | None) -> Response:
        """Build the service's HTTP 429 response. fail_next adds Retry-After."""
        return self.error_response(
            "temporarily_unavailable", "Too many requests.", status=429
        )

    # -------------------------------------------------------------- dispatching

    def _track_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _serve(self, handler: _RequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        try:
            body = _read_body(handler)
        except ValueError as error:
            logger.warning(
                "fake %s server: unreadable request body: %s", self.service, error
            )
            self._send(handler, Response(400, b"unreadable request body\n"))
            handler.close_connection = True
            return
        request = _build_request(handler.command, parts, handler, body, self.now())
        route, method_mismatch = self._match_route(request)
        logger.debug(
            "fake %s server: %s %s -> %s",
            self.service,
            request.method,
            request.path,
            route.endpoint if route else None,
        )

        with self._lock:
            self.requests.append(request)
            failure = self._take_failure(request.endpoint)

        if failure is not None and failure.delay:
            time.sleep(failure.delay)
        if failure is not None and failure.drop_connection:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return

        if failure is not None and (
            failure.status is not None
            or failure.error is not None
            or failure.body is not None
        ):
            with self._lock:
                response = self._canned_response(failure, request)
        elif route is not None:
            response = self._run_handler(route, request)
        elif method_mismatch:
            response = json_response(405, {"error": "method_not_allowed"})
        else:
            response = self.not_found_response(request)
        self._send(handler, response)

    def _run_handler(self, route: _Route, request: RecordedRequest) -> Response:
        try:
            with self._lock:
                return route.handler(request)
        except Exception as error:
            # A bug in the fake must not look like a service response, so it becomes a
            # 500 and is kept for the fixtures to report.
            logger.exception(
                "fake %s server: handler for %s %s failed",
                self.service,
                request.method,
                request.path,
            )
            with self._lock:
                self.handler_errors.append(error)
            return json_response(
                500, {"error": "fake_server_bug", "error_description": repr(error)}
            )

    def not_found_response(self, request: RecordedRequest) -> Response:
        return json_response(404, {"error": "not_found", "path": request.path})

    def _match_route(self, request: RecordedRequest) -> tuple[_Route | None, bool]:
        method_mismatch = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            if route.method != request.method:
                method_mismatch = True
                continue
            request.endpoint = route.endpoint
            request.path_args = {
                name: value
                for name, value in match.groupdict().items()
                if value is not None
            }
            return route, False
        return None, method_mismatch

    def _send(self, handler: _RequestHandler, response: Response) -> None:
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)

    # ------------------------------------------------------ authorize endpoint

    def deny_next_authorization(self, times: int = 1) -> None:
        """Make the next authorize requests end as if the user clicked "Deny"."""
        with self._lock:
            self._denials_pending += times

    def take_denial(self) -> bool:
        """Consume one pending denial. Authorize handlers call it once per request."""
        if self._denials_pending > 0:
            self._denials_pending -= 1
            return True
        return False

    def issue_code(
        self,
        client: ClientRegistration,
        *,
        redirect_uri: str | None,
        effective_redirect_uri: str | None,
        params: Mapping[str, str],
        scope: tuple[str, ...],
        code_challenge_method: str | None = None,
        prefix: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> AuthorizationCode:
        code = AuthorizationCode(
            value=prefix + secrets.token_urlsafe(24),
            client_id=client.client_id,
            user=self.current_user,
            redirect_uri=redirect_uri,
            effective_redirect_uri=effective_redirect_uri,
            params=dict(params),
            scope=scope,
            code_challenge=params.get("code_challenge") or None,
            code_challenge_method=code_challenge_method,
            expires_at=self.now() + AUTHORIZATION_CODE_LIFETIME,
            extra=dict(extra or {}),
        )
        self.codes[code.value] = code
        return code

    def redeem_code(
        self, value: str | None, client_id: str | None
    ) -> AuthorizationCode | None:
        """Mark a code used and return it, or return None when it is not redeemable.

        A code is not redeemable when it is unknown, already used, expired or
        issued to another client.
        """
        code = self.codes.get(value or "")
        if code is None or code.used or code.client_id != client_id:
            return None
        if self.now() >= code.expires_at:
            return None
        code.used = True
        return code

    @property
    def last_code(self) -> AuthorizationCode | None:
        """The most recently issued authorization code, or None."""
        with self._lock:
            if not self.codes:
                return None
            return list(self.codes.values())[-1]

    @staticmethod
    def check_pkce(code: AuthorizationCode, verifier: str | None) -> str | None:
        """Return None when the verifier matches the code's challenge.

        Returns "missing" when the code has a challenge but no verifier was sent,
        and "mismatch" when the verifier does not match. A code without a
        challenge accepts any verifier, or none.
        """
        if code.code_challenge is None:
            return None
        if not verifier:
            return "missing"
        if code.code_challenge_method == "S256":
            expected = pkce_s256_challenge(verifier)
        else:
            expected = verifier
        if not secrets.compare_digest(expected, code.code_challenge):
            return "mismatch"
        return None

    # ----------------------------------------------------------------- tokens

    def new_grant_id(self) -> str:
        return secrets.token_hex(8)

    def issue_token(
        self,
        kind: str,
        *,
        client_id: str,
        user: str | None,
        scope: tuple[str, ...],
        grant_id: str,
        lifetime: float | None,
        extra: Mapping[str, Any] | None = None,
    ) -> TokenRecord:
        """Store and return a new random token. A lifetime of None never expires."""
        prefix = (
            self.access_token_prefix if kind == "access" else self.refresh_token_prefix
        )
        now = self.now()
        record = TokenRecord(
            value=prefix + secrets.token_urlsafe(32),
            kind=kind,
            client_id=client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            issued_at=now,
            expires_at=None if lifetime is None else now + lifetime,
            extra=dict(extra or {}),
        )
        self.tokens[record.value] = record
        return record

    def is_live(self, record: TokenRecord | None) -> bool:
        if record is None or record.revoked or record.used:
            return False
        return record.expires_at is None or self.now() < record.expires_at

    def live_token(self, value: str | None, kind: str) -> TokenRecord | None:
        """Return the live token of that kind with that value, or None."""
        record = self.tokens.get(value or "")
        if record is None or record.kind != kind or not self.is_live(record):
            return None
        return record

    def is_access_token_live(self, value: str) -> bool:
        with self._lock:
            return self.live_token(value, "access") is not None

    def is_refresh_token_live(self, value: str) -> bool:
        with self._lock:
            return self.live_token(value, "refresh") is not None

    def live_tokens(self, kind: str | None = None) -> list[TokenRecord]:
        with self._lock:
            return [
                record
                for record in self.tokens.values()
                if (kind is None or record.kind == kind) and self.is_live(record)
            ]

    def revoke_grant(self, grant_id: str) -> int:
        """Revoke every token of one authorization and return how many were live."""
        count = 0
        for record in self.tokens.values():
            if record.grant_id == grant_id and not record.revoked:
                count += int(self.is_live(record))
                record.revoked = True
        return count

    def revoke_all(self) -> None:
        """Revoke every token and pending code, as if the user removed the app."""
        with self._lock:
            for record in self.tokens.values():
                record.revoked = True
            for code in self.codes.values():
                code.used = True

    def expire_access_tokens(self) -> None:
        """Expire every live access token now. Refresh tokens stay live."""
        with self._lock:
            now = self.now()
            for record in self.tokens.values():
                if record.kind == "access" and self.is_live(record):
                    record.expires_at = now

    # ------------------------------------------------------------- device flow

    def start_device_authorization(
        self,
        client_id: str,
        scope: tuple[str, ...],
        *,
        user_code: str,
        lifetime: float,
        interval: int,
        params: Mapping[str, str],
    ) -> DeviceAuthorization:
        device = DeviceAuthorization(
            device_code=secrets.token_urlsafe(30),
            user_code=user_code,
            client_id=client_id,
            scope=scope,
            params=dict(params),
            expires_at=self.now() + lifetime,
            interval=interval,
        )
        self.device_authorizations[device.device_code] = device
        return device

    def poll_device(
        self, device_code: str | None, client_id: str | None, *, enforce_interval: bool
    ) -> tuple[str, DeviceAuthorization | None]:
        """Record one poll and return its outcome and the device authorization.

        The outcome is "invalid" (unknown code, another client, or already
        redeemed), "expired", "slow_down", "denied", "pending" or "approved". An
        approved authorization becomes "redeemed", so its device code works once.
        With enforce_interval, a poll sooner than ``interval`` seconds after the
        previous one while the sign-in is pending gets "slow_down" and adds 5
        seconds to the interval, as RFC 8628 section 3.5 describes. The first poll
        is never too early.
        """
        device = self.device_authorizations.get(device_code or "")
        if (
            device is None
            or device.client_id != client_id
            or device.status == "redeemed"
        ):
            return "invalid", device
        now = self.now()
        previous_poll = device.last_poll_at
        device.last_poll_at = now
        device.poll_count += 1
        if device.status == "expired" or now >= device.expires_at:
            device.status = "expired"
            return "expired", device
        if device.status == "denied":
            return "denied", device
        if device.status == "approved":
            device.status = "redeemed"
            return "approved", device
        too_early = previous_poll is not None and now - previous_poll < device.interval
        if enforce_interval and too_early:
            device.interval += 5
            return "slow_down", device
        return "pending", device

    def _device_by_user_code(self, user_code: str) -> DeviceAuthorization:
        wanted = _normalize_user_code(user_code)
        for device in self.device_authorizations.values():
            if _normalize_user_code(device.user_code) == wanted:
                return device
        raise KeyError(f"no device authorization with user code {user_code!r}")

    def approve_device(self, user_code: str, user: str | None = None) -> None:
        """Approve a device sign-in as ``user`` (default: ``current_user``)."""
        with self._lock:
            device = self._device_by_user_code(user_code)
            device.status = "approved"
            device.extra["user"] = user or self.current_user

    def deny_device(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).status = "denied"

    def expire_device(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).status = "expired"

    @property
    def last_device_authorization(self) -> DeviceAuthorization | None:
        with self._lock:
            if not self.device_authorizations:
                return None
            return list(self.device_authorizations.values())[-1]


def format_retry_after(seconds: float) -> str:
    """Format a Retry-After value in whole seconds when it is integral."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def generate_user_code(groups: int, group_length: int, alphabet: str) -> str:
    """Return a random user code such as "WDJB-MJHT" made of alphabet characters."""
    return "-".join(
        "".join(secrets.choice(alphabet) for _ in range(group_length))
        for _ in range(groups)
    )


def _normalize_user_code(user_code: str) -> str:
    return user_code.replace("-", "").replace(" ", "").upper()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """Read the request body from Content-Length or chunked transfer coding."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size_line = handler.rfile.readline()
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as error:
                raise ValueError(f"invalid chunk size line {size_line!r}") from error
            if size == 0:
                # Skip trailer fields up to the blank line.
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length_header = handler.headers.get("Content-Length")
    if not length_header:
        return b""
    try:
        length = int(length_header)
    except ValueError as error:
        raise ValueError(f"invalid Content-Length {length_header!r}") from error
    return handler.rfile.read(length)


def _build_request(
    method: str,
    parts: urllib.parse.SplitResult,
    handler: BaseHTTPRequestHandler,
    body: bytes,
    received_at: float,
) -> RecordedRequest:
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    request = RecordedRequest(
        method=method,
        path=parts.path,
        query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
        headers=headers,
        body=body,
        received_at=received_at,
    )
    content_type = request.content_type
    if content_type == "application/x-www-form-urlencoded":
        try:
            request.form = urllib.parse.parse_qs(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
            )
        except UnicodeDecodeError:
            request.form = None
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            request.json = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            request.json = None
    return request
