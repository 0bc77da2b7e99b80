"""Interactive sign-in: the authorization code grant with PKCE.

RFC 6749 section 4.1 with RFC 7636 (S256 only). A loopback redirect URI
(RFC 8252 section 7.3) is served by ``RedirectListener``. With any other
redirect URI, the out-of-band one included, the person pastes the code or the
whole redirected URL.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Dict, Optional
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..config import AuthConfig
from ..console import Console
from ..dialects import Client, Dialect, get_dialect
from ..endpoint import HttpSettings, clean_text, is_loopback_host
from ..errors import AuthorizationError, ConfigurationError
from ..loopback import RedirectListener
from ..token import StoredToken
from ._client import build_client, request_token

logger = logging.getLogger(__name__)

DEFAULT_LOGIN_TIMEOUT = 300.0
_POLL_INTERVAL = 0.2


@dataclass(repr=False)
class _Authorization:
    """The secrets of one authorization request."""

    state: str
    code_verifier: Optional[str]
    redirect_uri: str


def is_loopback_redirect(redirect_uri: str) -> bool:
    """Return whether ``redirect_uri`` is served by the local redirect listener."""
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def sign_in_with_browser(
    config: AuthConfig,
    console: Console,
    *,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    settings: Optional[HttpSettings] = None,
) -> StoredToken:
    """Run the authorization code flow and return the new token.

    Args:
        config: The service.
        console: Where the URL is shown and the pasted code or URL read.
        timeout: Seconds to wait for the redirect or the pasted code.
        settings: Timeouts and retries of the code exchange.

    Raises:
        ConfigurationError: The client or redirect URI is not usable.
        AuthorizationError: The person denied access, the redirect did not
            arrive in time, or the pasted code or URL was invalid.
        TokenEndpointError: The service rejected the code exchange.
    """
    dialect = get_dialect(config)
    client = build_client(config, dialect)
    redirect_uri = config.resolved_redirect_uri
    dialect.check_redirect_uri(config, redirect_uri)
    authorization = _Authorization(
        state=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64) if dialect.uses_pkce else None,
        redirect_uri=redirect_uri,
    )

    if is_loopback_redirect(redirect_uri):
        with _start_listener(config, redirect_uri, authorization.state) as listener:
            authorization.redirect_uri = listener.redirect_uri
            url = _authorization_url(config, dialect, client, authorization)
            console.show_url(url, f"Sign in to {config.service} in your browser:")
            params = _wait_for_redirect(listener, console, authorization, timeout)
    else:
        url = _authorization_url(config, dialect, client, authorization)
        console.show_url(url, f"Sign in to {config.service} in your browser:")
        params = _read_pasted(console, authorization, timeout)

    code = _code_from(params, config.service)
    return _exchange_code(config, dialect, client, authorization, code, settings)


def _start_listener(
    config: AuthConfig, redirect_uri: str, state: str
) -> RedirectListener:
    try:
        return RedirectListener(redirect_uri, state)
    except ValueError:
        raise ConfigurationError(
            f"{config.service}: the redirect URI {redirect_uri!r} has an invalid port."
        ) from None
    except OSError as exc:
        variable = (
            f" or set {config.redirect_uri_env}" if config.redirect_uri_env else ""
        )
        raise ConfigurationError(
            f"{config.service}: cannot listen for the redirect to {redirect_uri} "
            f"({exc.strerror}). Free that port{variable}, or use a redirect URI "
            "without a port if the service accepts any port."
        ) from None


def _authorization_url(
    config: AuthConfig, dialect: Dialect, client: Client, authorization: _Authorization
) -> str:
    url = dialect.endpoint(config, config.oauth_authorize_url, "authorization endpoint")
    extra: Dict[str, str] = {
        **dialect.authorize_params(config),
        **config.authorize_params,
    }
    if authorization.code_verifier:
        extra["code_challenge"] = create_s256_code_challenge(
            authorization.code_verifier
        )
        extra["code_challenge_method"] = "S256"
    return str(
        prepare_grant_uri(
            url,
            client.client_id,
            "code",
            redirect_uri=dialect.redirect_uri_param(authorization.redirect_uri),
            scope=dialect.authorize_scopes(config) or None,
            state=authorization.state,
            **extra,
        )
    )


def _wait_for_redirect(
    listener: RedirectListener,
    console: Console,
    authorization: _Authorization,
    timeout: float,
) -> Dict[str, str]:
    """Wait for the listener or a pasted redirect URL, whichever comes first.

    When the browser runs on another machine its redirect cannot reach this
    listener, so the person may paste the redirected URL from the address
    bar instead. The first valid callback or pasted URL wins,
    and the caller closes the listener either way.
    """
    watch_input = console.input_fd() is not None
    if watch_input:
        console.say(
            "Waiting for the browser to finish. If it runs on another machine, "
            "paste the URL it was redirected to here and press Enter."
        )
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AuthorizationError(
                f"No authorization arrived within {timeout:g} s. Run the "
                "sign-in again, or paste the redirected URL sooner."
            )
        wait = min(_POLL_INTERVAL, remaining)
        callback = listener.wait(0 if watch_input else wait)
        if callback is not None:
            return callback.params
        if not watch_input:
            continue
        line = console.poll_line(wait)
        if line == "":
            watch_input = (
                False  # end of input: only the listener can deliver the code now
            )
        elif line:
            try:
                return _parse_pasted(line, authorization.state, require_url=True)
            except AuthorizationError as exc:
                console.say(f"{exc} Paste the whole URL, or wait for the browser.")


def _read_pasted(
    console: Console, authorization: _Authorization, timeout: float
) -> Dict[str, str]:
    prompt = "Paste the authorization code or the redirected URL: "
    try:
        line = console.ask(prompt, timeout=timeout)
    except TimeoutError:
        raise AuthorizationError(
            f"No authorization code was entered within {timeout:g} s. Run the "
            "sign-in again."
        ) from None
    if line is None:
        raise AuthorizationError(
            "Sign-in cancelled: the input ended before a code was entered."
        )
    if not line:
        raise AuthorizationError("No authorization code was entered.")
    return _parse_pasted(line, authorization.state, require_url=False)


def _parse_pasted(text: str, state: str, *, require_url: bool) -> Dict[str, str]:
    """Read a pasted bare code or redirected URL and check its ``state``."""
    looks_like_url = (
        "://" in text or text.startswith("?") or "code=" in text or "error=" in text
    )
    if not looks_like_url:
        if require_url:
            raise AuthorizationError("That is not a redirected URL.")
        return {"code": text}
    parts = urlsplit(text)
    query = parts.query or (text[1:] if text.startswith("?") else "")
    params = dict(parse_qsl(query or parts.fragment, keep_blank_values=True))
    if "code" not in params and "error" not in params:
        raise AuthorizationError("The pasted URL contains neither a code nor an error.")
    received = params.get("state", "")
    if not hmac.compare_digest(received.encode(), state.encode()):
        raise AuthorizationError(
            "The pasted URL's state does not match this sign-in, so it was "
            "rejected. Paste the URL from the sign-in that this command started."
        )
    return params


def _code_from(params: Dict[str, str], service: str) -> str:
    error = params.get("error")
    if error:
        error = clean_text(error)
        description = params.get("error_description")
        description = clean_text(description) if description else None
        detail = f": {description}" if description else ""
        raise AuthorizationError(
            f"{service}: authorization failed ({error}{detail}). Run the sign-in "
            "again and approve the request."
        )
    code = params.get("code")
    if not code:
        raise AuthorizationError(
            f"{service}: the redirect carried no authorization code."
        )
    return code


def _exchange_code(
    config: AuthConfig,
    dialect: Dialect,
    client: Client,
    authorization: _Authorization,
    code: str,
    settings: Optional[HttpSettings],
) -> StoredToken:
    grant = {"grant_type": "authorization_code", "code": code}
    redirect_param = dialect.redirect_uri_param(authorization.redirect_uri)
    if redirect_param:
        grant["redirect_uri"] = redirect_param
    if authorization.code_verifier:
        grant["code_verifier"] = authorization.code_verifier
    request = dialect.token_request(config, client, grant)
    token = request_token(
        request,
        client,
        method="oauth_pkce",
        settings=settings,
        requested_scopes=dialect.authorize_scopes(config),
    )
    logger.info("Signed in to %s with the authorization code flow", config.service)
    return token
