"""A loopback API that accepts a Bearer token only while it is active.

It queries the test authorization server's introspection endpoint about each
token, as a resource server protected by that server would (RFC 7662).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List


class ResourceServer:
    """Serve ``GET /data`` with 200 for an accepted token, 401 otherwise.

    Args:
        accepts: Decides whether a token is accepted.
    """

    def __init__(self, accepts: Callable[[str], bool]) -> None:
        self.accepts = accepts
        self.seen_tokens: List[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                header = self.headers.get("Authorization", "")
                token = header.removeprefix("Bearer ")
                owner.seen_tokens.append(token)
                ok = header.startswith("Bearer ") and owner.accepts(token)
                self.send_response(200 if ok else 401)
                if not ok:
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/data"

    def __enter__(self) -> ResourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
