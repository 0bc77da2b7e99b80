"""Control of the test authorization server in tests/idp/server.mjs.

The server is oidc-provider 8.8.1 on Node.js, run as a child process on 127.0.0.1
at a free port. ``IdentityProvider`` starts and stops it, reads its discovery
document and performs the user side of the device flow over HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote_plus

import httpx

from support.fake_browser import BrowserResult, HtmlForm, follow, origin, parse_page

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
SERVER_SCRIPT = IDP_DIR / "server.mjs"

READY_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0
HTTP_TIMEOUT_SECONDS = 10.0
NPM_CI_TIMEOUT_SECONDS = 300.0

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_REDIRECT_URIS = ("http://127.0.0.1/callback", "http://localhost/callback")
# oidc-provider 8.8.1 accepts a private-use scheme for native clients only when the
# scheme contains a dot (a reverse domain name).
PRIVATE_USE_REDIRECT_URI = "com.example.planopticon:/oauth2redirect"
REDIRECT_URIS = (*LOOPBACK_REDIRECT_URIS, PRIVATE_USE_REDIRECT_URI)

# Settings that server.mjs reads, with the defaults that default_config applies.
DEFAULT_SETTINGS: dict[str, Any] = {
    "accessTokenTtl": 120,
    # None makes client credentials tokens live as long as accessTokenTtl.
    "clientCredentialsTtl": None,
    "refreshTokenTtl": 14 * 24 * 60 * 60,
    "deviceCodeTtl": 600,
    "rotateRefreshToken": True,
    "scopes": ["openid", "offline_access", "read", "write"],
    "deviceInterval": 1,
    "enforceSlowDown": False,
}


@dataclass(frozen=True)
class ClientRegistration:
    """Client registered at the test server, with its secret in plain text."""

    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]


def default_clients() -> list[dict[str, Any]]:
    """Build the metadata of the standard test clients with fresh random secrets.

    All clients are native applications, so their loopback redirect URIs match any
    port. The test server requires PKCE with S256 for every authorization request.
    """
    native = {"application_type": "native"}
    return [
        {
            **native,
            "client_id": "confidential-app",
            "client_secret": secrets.token_urlsafe(32),
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": list(REDIRECT_URIS),
        },
        {
            **native,
            "client_id": "public-app",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
            "redirect_uris": list(REDIRECT_URIS),
        },
        {
            **native,
            "client_id": "post-app",
            "client_secret": secrets.token_urlsafe(32),
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": list(REDIRECT_URIS),
        },
        {
            **native,
            "client_id": "device-app",
            "client_secret": secrets.token_urlsafe(32),
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": [DEVICE_CODE_GRANT, "refresh_token"],
            "response_types": [],
            "redirect_uris": [],
        },
        {
            **native,
            "client_id": "service-app",
            "client_secret": secrets.token_urlsafe(32),
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
        },
    ]


def default_config(**settings: Any) -> dict[str, Any]:
    """Build a server configuration from the default clients and settings.

    Keyword arguments override entries of DEFAULT_SETTINGS, or replace ``clients``.
    An unknown name raises TypeError, so a misspelt setting cannot pass unnoticed.
    """
    unknown = set(settings) - set(DEFAULT_SETTINGS) - {"clients"}
    if unknown:
        raise TypeError(
            f"unknown test server settings {sorted(unknown)}: expected names from "
            f"{sorted(DEFAULT_SETTINGS)} or 'clients'"
        )
    config = {**DEFAULT_SETTINGS, "clients": default_clients()}
    config.update(settings)
    return config


def ensure_node_modules(idp_dir: Path = IDP_DIR) -> None:
    """Run ``npm ci`` in IDP_DIR unless oidc-provider is already installed there.

    NOTE: concurrent test processes (such as pytest-xdist workers) on a fresh
    checkout can run ``npm ci`` at the same time. Run it once before them.
    """
    if (idp_dir / "node_modules" / "oidc-provider" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm not found on PATH: install Node.js 20 with npm, "
            f"or run 'npm ci' in {idp_dir}"
        )
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=idp_dir,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"'npm ci' failed in {idp_dir} with exit status "
            f"{completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
        )


def basic_authorization(client_id: str, client_secret: str) -> str:
    """Return an HTTP Basic header value as RFC 6749, section 2.3.1 describes it.

    The client id and secret are form-urlencoded before base64 encoding.
    """
    credentials = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


class IdentityProviderError(RuntimeError):
    """Failure to start the test server or to complete a step on it."""


class IdentityProvider:
    """Test authorization server process and HTTP helpers for it.

    Endpoint properties come from the server's discovery document, so they are
    available only between ``start`` and ``stop``.
    """

    def __init__(self, idp_dir: Path = IDP_DIR) -> None:
        self._idp_dir = idp_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._stdout_reader: threading.Thread | None = None
        self._stdout_lines: queue.Queue[bytes | None] = queue.Queue()
        self._workdir: Path | None = None
        self._stderr_file: IO[bytes] | None = None
        self._stderr_text = ""
        self._config: dict[str, Any] = {}
        self._metadata: dict[str, Any] = {}
        self._port: int | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> IdentityProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Process control

    def start(self, config: dict[str, Any]) -> IdentityProvider:
        """Start the server with CONFIG and wait until it serves discovery.

        CONFIG is the JSON object that server.mjs reads, such as the result of
        default_config(). Raises IdentityProviderError with the server's stderr
        when it does not report readiness within READY_TIMEOUT_SECONDS.
        """
        if self._process is not None:
            raise IdentityProviderError("the test server is already running")
        node = shutil.which("node")
        if node is None:
            raise IdentityProviderError("node not found on PATH: install Node.js 20")
        ensure_node_modules(self._idp_dir)

        self._config = config
        self._workdir = Path(tempfile.mkdtemp(prefix="test-idp-"))
        config_path = self._workdir / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        self._stderr_file = (self._workdir / "stderr.log").open("wb")
        self._process = subprocess.Popen(
            [node, str(self._idp_dir / "server.mjs"), str(config_path)],
            cwd=self._idp_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
        )
        self._stdout_lines = queue.Queue()
        self._stdout_reader = threading.Thread(
            target=self._read_stdout,
            args=(self._process.stdout, self._stdout_lines),
            name="test-idp-stdout",
            daemon=True,
        )
        self._stdout_reader.start()
        # trust_env=False keeps proxy variables from routing loopback requests
        # elsewhere.
        self._http = httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False)

        try:
            self._port = self._wait_until_ready()
            response = self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._metadata = response.json()
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _read_stdout(stdout: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
        # Reading until end of file keeps the pipe from filling up.
        for line in stdout:
            lines.put(line)
        lines.put(None)

    def _wait_until_ready(self) -> int:
        """Wait for the server's ready line on stdout and return its port."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._stdout_lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                raise IdentityProviderError(
                    f"timed out after {READY_TIMEOUT_SECONDS} s waiting for the test "
                    f"server's ready line. Its stderr:\n{self.stderr_output()}"
                ) from None
            if line is None:
                status = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
                raise IdentityProviderError(
                    f"the test server exited with status {status} before it was "
                    f"ready. Its stderr:\n{self.stderr_output()}"
                )
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("ready"):
                return int(message["port"])

    def stop(self) -> None:
        """Stop the server and remove its temporary files.

        The server's stdin is closed and it gets SIGTERM. It is killed when it has
        not exited after STOP_TIMEOUT_SECONDS. Stopping a stopped server does
        nothing.
        """
        process = self._process
        if process is None:
            return
        if self._http is not None:
            self._http.close()
            self._http = None
        if process.stdin is not None:
            # Closing can raise BrokenPipeError when the process has already exited.
            with contextlib.suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._stdout_reader is not None:
            self._stdout_reader.join(timeout=STOP_TIMEOUT_SECONDS)
        if process.stdout is not None:
            process.stdout.close()
        self._stderr_text = self.stderr_output()
        if self._stderr_file is not None:
            self._stderr_file.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._process = None
        self._stdout_reader = None
        self._stderr_file = None
        self._workdir = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """Running server process, with a pipe on its stdin."""
        if self._process is None:
            raise IdentityProviderError("the test server is not running")
        return self._process

    def stderr_output(self) -> str:
        """Return what the server wrote to stderr so far, or before it stopped."""
        if self._workdir is None:
            return self._stderr_text
        if self._stderr_file is not None:
            self._stderr_file.flush()
        path = self._workdir / "stderr.log"
        return path.read_text(encoding="utf-8", errors="replace")

    @property
    def http(self) -> httpx.Client:
        """HTTP client for requests to the server, which ignores proxy variables."""
        if self._http is None:
            raise IdentityProviderError("the test server is not running")
        return self._http

    # Server metadata

    @property
    def port(self) -> int:
        if self._port is None:
            raise IdentityProviderError("the test server has not been started")
        return self._port

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata(self) -> dict[str, Any]:
        """Discovery document read from /.well-known/openid-configuration."""
        if not self._metadata:
            raise IdentityProviderError("the test server has not been started")
        return self._metadata

    @property
    def authorization_endpoint(self) -> str:
        return str(self.metadata["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def device_authorization_endpoint(self) -> str:
        return str(self.metadata["device_authorization_endpoint"])

    @property
    def revocation_endpoint(self) -> str:
        return str(self.metadata["revocation_endpoint"])

    @property
    def introspection_endpoint(self) -> str:
        return str(self.metadata["introspection_endpoint"])

    @property
    def config(self) -> dict[str, Any]:
        """Configuration the server was started with."""
        return self._config

    @property
    def clients(self) -> dict[str, ClientRegistration]:
        """Registered clients by client id."""
        registrations = {}
        for client in self._config.get("clients", []):
            registrations[client["client_id"]] = ClientRegistration(
                client_id=client["client_id"],
                client_secret=client.get("client_secret"),
                token_endpoint_auth_method=client.get(
                    "token_endpoint_auth_method", "client_secret_basic"
                ),
                redirect_uris=tuple(client.get("redirect_uris", ())),
                grant_types=tuple(client.get("grant_types", ("authorization_code",))),
            )
        return registrations

    # HTTP helpers

    def post_as_client(
        self, url: str, client_id: str, data: dict[str, str]
    ) -> httpx.Response:
        """POST a form to URL, authenticated with the client's registered method."""
        client = self.clients[client_id]
        form = dict(data)
        headers = {}
        method = client.token_endpoint_auth_method
        if method == "client_secret_basic":
            assert client.client_secret is not None
            headers["Authorization"] = basic_authorization(
                client_id, client.client_secret
            )
        elif method == "client_secret_post":
            assert client.client_secret is not None
            form["client_id"] = client_id
            form["client_secret"] = client.client_secret
        else:
            form["client_id"] = client_id
        return self.http.post(url, data=form, headers=headers)

    def introspect(self, token: str, client_id: str = "confidential-app") -> Any:
        """Return the introspection response (RFC 7662) for TOKEN as JSON.

        A public client may introspect only its own tokens, while a confidential
        client may introspect any token (the default policy of oidc-provider 8.8.1).
        """
        response = self.post_as_client(
            self.introspection_endpoint, client_id, {"token": token}
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> Any:
        """Return the request counters of the server's test middleware.

        The JSON object has ``token_requests``, the token endpoint requests by
        grant_type, and ``endpoint_requests``, the POST requests by endpoint
        (``token``, ``revocation``, ``introspection``, ``device_authorization``).
        """
        response = self.http.get(f"{self.issuer}/_test/stats")
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        """Set all request counters to zero."""
        response = self.http.post(f"{self.issuer}/_test/reset")
        response.raise_for_status()

    def approve_device(
        self, user_code: str, *, deny: bool = False, login: str = "test-user"
    ) -> None:
        """Perform the user side of the device flow for USER_CODE.

        The steps are: the verification page, the user code form, the confirmation
        form, then login and consent. With ``deny=True`` the confirmation form is
        aborted, and the next poll for the device code returns ``access_denied``.
        Raises IdentityProviderError when a step does not return the expected page.
        """
        with httpx.Client(
            timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            page = client.get(f"{self.issuer}/device", params={"user_code": user_code})
            code_form = self._single_form(page, "user code form")
            page = client.post(page.url.join(code_form.action), data=code_form.inputs)
            confirm_form = self._single_form(page, "confirmation form")
            if confirm_form.inputs.get("confirm") != "yes":
                raise IdentityProviderError(
                    f"the server did not show the device confirmation form for user "
                    f"code {user_code!r}, so the code may be unknown, expired or "
                    f"already used. It returned HTTP {page.status_code}:\n{page.text}"
                )

            inputs = dict(confirm_form.inputs)
            if deny:
                del inputs["confirm"]
                inputs["abort"] = "yes"
            page = client.post(page.url.join(confirm_form.action), data=inputs)
            if deny:
                if "interrupted" not in page.text:
                    raise IdentityProviderError(
                        f"aborting user code {user_code!r} returned HTTP "
                        f"{page.status_code}:\n{page.text}"
                    )
                return

            result = BrowserResult(url=str(page.url), action="consent")
            follow(client, page, origin(page.url), "consent", login, result)
            if result.page_status != 200 or "Sign-in Success" not in (
                result.page_body or ""
            ):
                raise IdentityProviderError(
                    f"the device sign-in for user code {user_code!r} ended at "
                    f"{result.final_url} with HTTP {result.page_status}:\n"
                    f"{result.page_body}"
                )

    @staticmethod
    def _single_form(page: httpx.Response, description: str) -> HtmlForm:
        forms, _links = parse_page(page.text)
        if page.status_code != 200 or len(forms) != 1:
            raise IdentityProviderError(
                f"expected a page with the device {description} at {page.url}, "
                f"got HTTP {page.status_code} with {len(forms)} forms:\n{page.text}"
            )
        return forms[0]


__all__ = [
    "DEVICE_CODE_GRANT",
    "LOOPBACK_REDIRECT_URIS",
    "PRIVATE_USE_REDIRECT_URI",
    "REDIRECT_URIS",
    "ClientRegistration",
    "IdentityProvider",
    "IdentityProviderError",
    "basic_authorization",
    "default_clients",
    "default_config",
]
