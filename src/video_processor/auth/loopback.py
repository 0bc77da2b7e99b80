"""A one-shot listener for the authorization redirect (RFC 8252 section 7.3).

It binds a loopback address only, accepts exactly one request whose path and
``state`` match, and gives every other request 404 while it keeps waiting,
a browser's ``/favicon.ico`` included.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .http_pages import error_page, success_page

logger = logging.getLogger(__name__)

# Seconds a connection may stay idle before the listener drops it, so that a
# browser's speculative connection cannot hold a handler thread.
CONNECTION_TIMEOUT = 10.0


@dataclass
class Callback:
    """The query parameters of the accepted redirect."""

    params: Dict[str, str]

    def __repr__(self) -> str:
        return f"Callback(keys={sorted(self.params)})"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    expected_path: str
    state: str
    callback: Optional[Callback]
    done: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = CONNECTION_TIMEOUT

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if self.server.done.is_set() or not self._matches(parts.path, params):
            self._respond(404, "<p>Not found.</p>")
            return
        self.server.callback = Callback(params)
        self.server.done.set()
        if "error" in params:
            self._respond(
                400, error_page(params["error"], params.get("error_description"))
            )
        else:
            self._respond(200, success_page())

    def _matches(self, path: str, params: Dict[str, str]) -> bool:
        if (path or "/") != self.server.expected_path:
            return False
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), self.server.state.encode()):
            logger.warning("Ignored a redirect whose state does not match")
            return False
        return True

    def _respond(self, status: int, body: str) -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        # The request line carries the authorization code: log no part of it.
        logger.debug("Redirect listener responded to a request")


class RedirectListener:
    """Serve the redirect URI on a loopback address until one callback.

    A redirect URI without a port gets a free port, and ``redirect_uri`` is
    then the URI to send in the authorization request.

    Args:
        redirect_uri: The configured loopback redirect URI.
        state: The ``state`` sent in the authorization request.
    """

    def __init__(self, redirect_uri: str, state: str) -> None:
        parts = urlsplit(redirect_uri)
        host = parts.hostname or "127.0.0.1"
        # NOTE: for "localhost" only 127.0.0.1 is bound; a browser that
        # resolves localhost to ::1 alone cannot reach the listener.
        bind_host = "127.0.0.1" if host == "localhost" else host
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self._server = _server_class(family)((bind_host, parts.port or 0), _Handler)
        self._server.expected_path = parts.path or "/"
        self._server.state = state
        self._server.callback = None
        self._server.done = threading.Event()
        port = self._server.server_address[1]
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.redirect_uri = urlunsplit(parts._replace(netloc=netloc))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="planopticon-redirect-listener",
            daemon=True,
        )

    def __enter__(self) -> RedirectListener:
        self._thread.start()
        logger.debug(
            "Redirect listener serving on port %d", self._server.server_address[1]
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait(self, timeout: float) -> Optional[Callback]:
        """Return the callback, or ``None`` if none arrived within ``timeout``."""
        if self._server.done.wait(timeout):
            return self._server.callback
        return None

    def close(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def _server_class(family: int) -> type[_Server]:
    return type("_LoopbackServer", (_Server,), {"address_family": family})
