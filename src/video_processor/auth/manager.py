"""``OAuthManager``: runs the authentication chain for one service.

The chain stops at the first step that succeeds:

1. the saved token, refreshed when it is due;
2. the client credentials grant, when an account ID is configured;
3. interactive sign-in (browser or device code), when a person is present;
4. the API key from the environment.

The manager owns no protocol detail: the flows under ``flows/`` do, and are
imported only when a request must be sent, so handing out a valid saved
token imports neither httpx nor Authlib.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Callable, List, Optional

from . import _clock
from ._attempts import Attempts, failure_reason
from ._secrets import fingerprint
from .config import AuthConfig
from .errors import (
    AuthError,
    RevocationError,
    StorageError,
    TokenEndpointError,
)
from .result import AuthResult
from .store import DEFAULT_LOCK_TIMEOUT, StatKey, TokenStore
from .token import StoredToken

if TYPE_CHECKING:
    from .console import Console
    from .endpoint import HttpSettings

logger = logging.getLogger(__name__)

INTERACTIVE_ENV = "PLANOPTICON_INTERACTIVE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class OAuthManager:
    """Manages the full authentication lifecycle for a service.

    Args:
        config: Authentication configuration for the target service.
        interactive: Whether a person is present to complete a browser or device-code
            sign-in. ``None`` reads ``PLANOPTICON_INTERACTIVE`` (``1`` or
            ``0``), and otherwise whether standard input is a terminal.
        device: ``True`` signs in with the device flow, ``False`` never
            does, ``None`` uses it when no browser can be opened and the
            service offers it.
        open_browser: Whether to open the sign-in URL in a browser; when
            ``False`` the URL is only printed.
        login_timeout: Seconds to wait for the browser redirect or the
            pasted code.
        lock_timeout: Maximum seconds to wait for another process holding
            the token file's lock.
        http_timeout: Timeout of each HTTP request, in seconds.
        console: Streams and browser for the interactive step; by default
            standard input and standard error and ``webbrowser.open``.
    """

    def __init__(
        self,
        config: AuthConfig,
        *,
        interactive: Optional[bool] = None,
        device: Optional[bool] = None,
        open_browser: bool = True,
        login_timeout: float = 300.0,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        http_timeout: float = 15.0,
        console: Optional[Console] = None,
    ) -> None:
        self.config = config
        self.interactive = interactive
        self.device = device
        self.open_browser = open_browser
        self.login_timeout = login_timeout
        self.http_timeout = http_timeout
        self._console = console
        self._store = TokenStore(config.resolved_token_path, lock_timeout=lock_timeout)
        self._rejected: set[str] = set()
        # The token behind the last stat key seen, for the hot path.
        self._hot: Optional[tuple[StatKey, StoredToken]] = None

    def __repr__(self) -> str:
        return f"OAuthManager(service={self.config.service!r})"

    @property
    def store(self) -> TokenStore:
        """The token file of this service."""
        return self._store

    def authenticate(self) -> AuthResult:
        """Run the full auth chain and return the result.

        Never raises for an authentication failure: a failed result's
        ``error`` lists which steps were tried, why each failed, and which
        environment variables to set.
        """
        fresh = self._fresh_saved_token()
        if fresh is not None:
            return _success(fresh, "saved_token")
        attempts = Attempts(self.config.service)
        steps: List[Callable[[Attempts], Optional[AuthResult]]] = [
            self._try_saved_token,
            self._try_client_credentials,
            self._try_interactive,
            self._try_api_key,
        ]
        for step in steps:
            result = step(attempts)
            if result is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s: authenticated via %s (token %s)",
                        self.config.service,
                        result.method,
                        fingerprint(result.access_token),
                    )
                return result
        return AuthResult(success=False, error=attempts.failure_message(self.config))

    def _fresh_saved_token(self) -> Optional[StoredToken]:
        """Return the saved token if it can be handed out as it is.

        This is the hot path of every batch job: one ``stat`` of an unchanged
        file and no import of an HTTP or OAuth library. Anything else,
        errors included, goes through the full chain.
        """
        key = self._store.stat_key()
        hot = self._hot
        if key is not None and hot is not None and hot[0] == key:
            token = hot[1]
        else:
            try:
                loaded = self._store.load()
            except StorageError:
                return None
            if loaded is None:
                return None
            token = loaded
            self._hot = (key, token) if key is not None else None
        return token if self._usable(token) else None

    def get_token(self) -> Optional[str]:
        """Run ``authenticate()`` and return just the access token, or None."""
        # The common case, inlined: the file is unchanged since the last
        # call and its token is still fresh.
        hot = self._hot
        if hot is not None and not self._rejected:
            token = hot[1]
            if self._store.stat_key() == hot[0] and (
                token.expires_at is None or _clock.now() < token.expires_at
            ):
                return token.access_token
        result = self.authenticate()
        return result.access_token if result.success else None

    def clear_token(self, *, revoke: bool = False) -> None:
        """Remove the saved token file for this service (a logout).

        Args:
            revoke: Also revoke the token at the service first. The local
                file is removed even when revocation fails.

        Raises:
            RevocationError: Only with ``revoke=True``: revocation failed,
                the service has no revocation endpoint, or the saved token
                could not be read. ``still_live`` names what may still be
                valid at the service. The token file is gone by then.
            StorageError: The token file cannot be removed.
        """
        self._rejected.clear()
        self._hot = None
        if not self._store.path.exists():
            return
        failure: Optional[RevocationError] = None
        with self._store.lock():
            if revoke:
                from .flows.revoke import revoke_saved_token

                failure = revoke_saved_token(self.config, self._store, self._http())
            self._store.delete()
        if failure is not None:
            raise failure

    def invalidate(self, access_token: Optional[str] = None) -> None:
        """Record that the service rejected a token (for example with 401).

        The next ``authenticate()`` refreshes the saved token once, unless
        another process already saved a different one, which is then used.

        Args:
            access_token: The rejected token; by default the saved one.
        """
        if access_token is None:
            token = self._load_quietly()
            access_token = token.access_token if token else None
        if access_token:
            self._rejected.add(fingerprint(access_token))
            logger.info(
                "%s: token %s marked as rejected",
                self.config.service,
                fingerprint(access_token),
            )

    # -- the steps -------------------------------------------------------

    def _try_saved_token(self, attempts: Attempts) -> Optional[AuthResult]:
        step = "saved token"
        try:
            token = self._store.load()
        except StorageError as exc:
            attempts.add(step, str(exc))
            return None
        if token is None:
            attempts.add(step, f"none saved at {self._store.path}")
            return None
        if self._usable(token):
            return _success(token, "saved_token")
        if not token.refresh_token:
            state = "was rejected" if self._is_rejected(token) else "has expired"
            attempts.add(step, f"the token {state} and has no refresh token")
            return None
        return self._refresh_under_lock(attempts)

    def _refresh_under_lock(self, attempts: Attempts) -> Optional[AuthResult]:
        """Refresh once across processes: lock, re-read, refresh if due, save."""
        from .flows.refresh import refresh_token

        step = "saved token"
        try:
            with self._store.lock():
                current = self._store.load(use_cache=False)
                if current is None:
                    attempts.add(step, "removed by another process")
                    return None
                if self._usable(current):
                    logger.debug(
                        "%s: using the token another process saved", self.config.service
                    )
                    return _success(current, "saved_token")
                if not current.refresh_token:
                    attempts.add(step, "the token has expired and has no refresh token")
                    return None
                try:
                    refreshed = refresh_token(
                        self.config, current, settings=self._http()
                    )
                except TokenEndpointError as exc:
                    return self._after_failed_refresh(current, exc, attempts)
                self._save_or_warn(refreshed, "refreshed")
        except AuthError as exc:
            attempts.add_failure(step, "token refresh", exc)
            return None
        self._rejected.discard(fingerprint(current.access_token))
        return _success(refreshed, "saved_token")

    def _after_failed_refresh(
        self, sent: StoredToken, error: TokenEndpointError, attempts: Attempts
    ) -> Optional[AuthResult]:
        """Use a newer token if one appeared; otherwise record why refresh failed.

        A process that refreshed without this lock (an older version, or a
        file copied in by hand) may have rotated the refresh token we sent.
        Nothing is deleted: the saved refresh token may still be the newest.
        """
        latest = self._store.load(use_cache=False)
        if (
            latest is not None
            and latest.refresh_token != sent.refresh_token
            and self._usable(latest)
        ):
            return _success(latest, "saved_token")
        reason = failure_reason("token refresh", error)
        if error.retryable:
            attempts.service_unavailable = True
            reason += "; the service may be unavailable for now, try again later"
        elif error.error == "invalid_client":
            reason += "; check the client ID and secret"
        elif error.error == "invalid_scope":
            reason += "; check the requested scopes"
        else:
            reason += f"; sign in again with `planopticon auth {self.config.service}`"
        attempts.add("saved token", reason)
        return None

    def _try_client_credentials(self, attempts: Attempts) -> Optional[AuthResult]:
        step = "client credentials"
        if not self.config.supports_oauth:
            return None
        if not self.config.resolved_account_id:
            if self.config.account_id_env:
                attempts.add(
                    step, f"not tried, {self.config.account_id_env} is not set"
                )
            return None
        if attempts.lock_busy:
            attempts.add(step, "skipped because another process holds the lock")
            return None
        from .flows.client_credentials import fetch_client_credentials_token

        try:
            with self._store.lock():
                current = self._store.load(use_cache=False)
                if current is not None and self._usable(current):
                    # Another process saved a token while this one waited.
                    return _success(current, "saved_token")
                token = fetch_client_credentials_token(
                    self.config, settings=self._http()
                )
                self._save_or_warn(token, "obtained")
        except AuthError as exc:
            attempts.add_failure(step, "token request", exc)
            return None
        return _success(token, "client_credentials")

    def _try_interactive(self, attempts: Attempts) -> Optional[AuthResult]:
        step = "interactive sign-in"
        config = self.config
        if not config.supports_oauth:
            if (
                config.oauth_authorize_url
                or config.oauth_token_url
                or not config.api_key_env
            ):
                attempts.add(
                    "OAuth",
                    "not configured, set both oauth_authorize_url and oauth_token_url",
                )
            return None
        if not config.resolved_client_id:
            if config.client_id_env:
                attempts.add(step, f"not tried, {config.client_id_env} is not set")
            return None
        interactive, why_not = self._interactivity()
        if not interactive:
            attempts.add(step, f"skipped because {why_not}")
            return None
        if attempts.lock_busy or attempts.service_unavailable:
            # A new sign-in would replace a grant that may still work (and
            # some services revoke the earlier grant on a new sign-in).
            attempts.add(step, "skipped to keep the saved sign-in")
            return None
        try:
            token = self._sign_in()
        except AuthError as exc:
            attempts.add_failure(step, "sign-in", exc)
            return None
        self._save_after_sign_in(token)
        self._rejected.clear()
        return _success(token, token.method or "oauth_pkce")

    def _save_after_sign_in(self, token: StoredToken) -> None:
        """Save a new sign-in; a storage failure costs the file, not the token."""
        try:
            with self._store.lock():
                self._store.save(token)
        except StorageError as exc:
            self._warn_unsaved("signed in", exc)

    def _save_or_warn(self, token: StoredToken, action: str) -> None:
        """Save under the held lock; a failure is logged, the token still used."""
        try:
            self._store.save(token)
        except StorageError as exc:
            self._warn_unsaved(action, exc)

    def _warn_unsaved(self, action: str, error: StorageError) -> None:
        logger.warning(
            "%s: %s a token but could not save it, so the next run cannot use it: %s",
            self.config.service,
            action,
            error,
        )

    def _try_api_key(self, attempts: Attempts) -> Optional[AuthResult]:
        if not self.config.api_key_env:
            return None
        api_key = self.config.resolved_api_key
        if not api_key:
            attempts.add("API key", f"{self.config.api_key_env} is not set")
            return None
        return AuthResult(success=True, access_token=api_key, method="api_key")

    # -- helpers ---------------------------------------------------------

    def _load_quietly(self) -> Optional[StoredToken]:
        try:
            return self._store.load()
        except StorageError:
            return None

    def _usable(self, token: StoredToken) -> bool:
        return token.is_fresh() and not self._is_rejected(token)

    def _is_rejected(self, token: StoredToken) -> bool:
        return (
            bool(self._rejected) and fingerprint(token.access_token) in self._rejected
        )

    def _interactivity(self) -> tuple[bool, str]:
        """Return whether a person is present to sign in, and if not, why not."""
        sign_in = f"sign in once with `planopticon auth {self.config.service}`"
        if self.interactive is not None:
            return (
                self.interactive,
                f"interactive sign-in is off for this run; {sign_in}",
            )
        setting = os.environ.get(INTERACTIVE_ENV, "").strip().lower()
        if setting in _TRUE:
            return True, ""
        if setting in _FALSE:
            return False, f"{INTERACTIVE_ENV}={setting} turns interactive sign-in off"
        if setting:
            logger.warning("Ignoring %s=%r: use 1 or 0.", INTERACTIVE_ENV, setting)
        try:
            terminal = sys.stdin is not None and sys.stdin.isatty()
        except (AttributeError, ValueError):
            terminal = False
        return terminal, (
            "no person can answer (standard input is not a terminal); "
            f"{sign_in} in a terminal, or set {INTERACTIVE_ENV}=1"
        )

    def _http(self) -> HttpSettings:
        from .endpoint import HttpSettings

        return HttpSettings(timeout=self.http_timeout)

    def _sign_in(self) -> StoredToken:
        from .console import Console
        from .flows.interactive import sign_in_interactively

        console = self._console or Console()
        if not self.open_browser:
            console.open_browser = None
        return sign_in_interactively(
            self.config,
            console,
            device=self.device,
            open_browser=self.open_browser,
            timeout=self.login_timeout,
            settings=self._http(),
        )


def _success(token: StoredToken, method: str) -> AuthResult:
    return AuthResult(
        success=True,
        access_token=token.access_token,
        method=method,
        expires_at=token.expires_at,
        refresh_token=token.refresh_token,
    )
