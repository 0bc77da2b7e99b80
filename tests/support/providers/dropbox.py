"""Fake Dropbox OAuth server: /oauth2/authorize, /oauth2/token, /2/auth/token/revoke.

Behaviour follows Dropbox's HTTP API documentation
(dropbox.com/developers/documentation/http/documentation) and its OAuth guide
(developers.dropbox.com/oauth-guide):

- The client authenticates with form fields ``client_id`` and ``client_secret``
  or with HTTP Basic (app key and app secret).
- Access tokens last 4 hours (``expires_in`` 14400). A refresh token comes only
  with ``token_access_type=offline`` on the authorize URL, and it does not rotate.
- A grant made with PKCE can be refreshed with ``client_id`` alone. Other grants
  need the secret.
- Without ``redirect_uri`` the authorize endpoint shows the code on a page for the
  user to paste. The fake puts it in ``<code id="auth-code">CODE</code>``.
- A ``redirect_uri``, when sent, must be registered exactly.
- Revocation takes the access token as a Bearer header and no body, and ends the
  refresh token of the same grant too.
- Token-endpoint errors are JSON ``{"error": "...", "error_description": "..."}``.
"""

from __future__ import annotations

import html
import secrets
import string
from collections.abc import Iterable

from .base import (
    AuthorizationCode,
    ClientRegistration,
    ProviderServer,
    RecordedRequest,
    Response,
    TokenRecord,
    add_query_params,
    error_page,
    html_response,
    json_response,
    redirect_response,
    split_scope,
)

TOKEN_ACCESS_TYPES = ("online", "offline", "legacy")
NO_AUTH_MESSAGE = "No auth function available for given request"


class DropboxServer(ProviderServer):
    """Fake of Dropbox's OAuth 2 endpoints for one app.

    ``app_scopes`` are granted when the authorize request has no ``scope``.
    ``accounts`` maps each signed-in user to a Dropbox-style (uid, account_id).
    """

    service = "dropbox"
    access_token_lifetime = 14400
    access_token_prefix = "sl."
    refresh_token_prefix = "dbx-rt-"

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        access_token_lifetime: int | None = None,
    ) -> None:
        super().__init__(
            redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime
        )
        self.app_scopes: tuple[str, ...] = ("account_info.read", "files.content.read")
        self.accounts: dict[str, tuple[str, str]] = {}

    def generate_client_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(15))

    def register_routes(self) -> None:
        self.add_route("GET", "/oauth2/authorize", "authorize", self.handle_authorize)
        self.add_route("POST", "/oauth2/token", "token", self.handle_token)
        self.add_route("POST", "/2/auth/token/revoke", "revoke", self.handle_revoke)

    @property
    def authorize_url(self) -> str:
        return self.url("/oauth2/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/oauth2/token")

    @property
    def revoke_url(self) -> str:
        return self.url("/2/auth/token/revoke")

    # Dropbox has no device flow.
    device_authorization_url = None

    def account(self, user: str) -> tuple[str, str]:
        """Return the (uid, account_id) of a user, made up on first use."""
        if user not in self.accounts:
            uid = str(secrets.randbelow(10**9))
            self.accounts[user] = (uid, "dbid:" + secrets.token_urlsafe(30))
        return self.accounts[user]

    def rate_limited_response(self, retry_after: float | None) -> Response:
        # Shape of the Dropbox API's too_many_requests error.
        return json_response(
            429,
            {
                "error_summary": "too_many_requests/",
                "error": {
                    "reason": {".tag": "too_many_requests"},
                    "retry_after": int(retry_after or 1),
                },
            },
        )

    # --------------------------------------------------------------- authorize

    def handle_authorize(self, request: RecordedRequest) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(400, "invalid_request", "Invalid client_id.")

        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and redirect_uri not in client.redirect_uris:
            return error_page(
                400,
                "invalid_request",
                f"Invalid redirect_uri {redirect_uri!r}: it must exactly match a "
                "redirect URI registered for the app, path included.",
            )
        if params.get("response_type") != "code":
            return error_page(400, "invalid_request", "response_type must be code.")
        token_access_type = params.get("token_access_type")
        if (
            token_access_type is not None
            and token_access_type not in TOKEN_ACCESS_TYPES
        ):
            return error_page(
                400,
                "invalid_request",
                f"Invalid token_access_type {token_access_type!r}.",
            )

        method = None
        if params.get("code_challenge"):
            # NOTE: Dropbox lists S256 and plain but does not say what an omitted
            # method means. The fake assumes plain, as RFC 7636 does.
            method = params.get("code_challenge_method") or "plain"
            if method not in ("plain", "S256"):
                return error_page(
                    400, "invalid_request", f"Invalid code_challenge_method {method!r}."
                )

        state = params.get("state")
        if self.take_denial():
            if redirect_uri is None:
                return html_response(200, "Access denied", "<p>Access denied.</p>")
            location = add_query_params(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user chose not to give your app access.",
                    "state": state,
                },
            )
            return redirect_response(location)

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=redirect_uri,
            params=params,
            scope=split_scope(params.get("scope")) or self.app_scopes,
            code_challenge_method=method,
        )
        if redirect_uri is None:
            return self._code_page(code)
        return redirect_response(
            add_query_params(redirect_uri, {"code": code.value, "state": state})
        )

    def _code_page(self, code: AuthorizationCode) -> Response:
        """Build the page that shows the code for the user to paste into the app."""
        body = (
            "<h1>Access code generated</h1>\n"
            "<p>Enter this code into your app to finish connecting to Dropbox:</p>\n"
            f'<code id="auth-code">{html.escape(code.value)}</code>'
        )
        return html_response(200, "Dropbox - API Request Authorized", body)

    # ------------------------------------------------------------------- token

    def handle_token(self, request: RecordedRequest) -> Response:
        params = request.form_params
        basic = request.basic_auth
        client_id = basic[0] if basic else params.get("client_id")
        secret = basic[1] if basic else params.get("client_secret")
        if not client_id:
            return self.error_response("invalid_request", NO_AUTH_MESSAGE)
        client = self.clients.get(client_id)
        # NOTE: Dropbox's pages do not give the status of invalid_client. The fake
        # uses 400 like its other token errors.
        if client is None or (
            secret is not None
            and not secrets.compare_digest(secret, client.client_secret)
        ):
            return self.error_response(
                "invalid_client", "Invalid client_id or client_secret"
            )
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client, params, has_secret=secret is not None)
        if grant_type == "refresh_token":
            return self._refresh(client, params, has_secret=secret is not None)
        return self.error_response(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token, "
            f"not {grant_type!r}",
        )

    def _exchange_code(
        self, client: ClientRegistration, params: dict[str, str], *, has_secret: bool
    ) -> Response:
        code = self.redeem_code(params.get("code"), client.client_id)
        if code is None:
            return self.error_response(
                "invalid_grant", "code doesn't exist or has expired"
            )
        used_pkce = code.code_challenge is not None
        if not has_secret and not used_pkce:
            return self.error_response("invalid_request", NO_AUTH_MESSAGE)
        if params.get("redirect_uri") != code.redirect_uri:
            return self.error_response("invalid_grant", "redirect_uri mismatch")
        if self.check_pkce(code, params.get("code_verifier")) is not None:
            return self.error_response("invalid_grant", "invalid code verifier")

        grant_id = self.new_grant_id()
        extra = {"pkce": used_pkce}
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=code.user,
            scope=code.scope,
            grant_id=grant_id,
            lifetime=self.access_token_lifetime,
            extra=extra,
        )

        uid, account_id = self.account(code.user)
        payload: dict[str, object] = {
            "access_token": access.value,
            "expires_in": self.access_token_lifetime,
            "token_type": "bearer",
            "scope": " ".join(code.scope),
            "uid": uid,
            "account_id": account_id,
        }

        if code.params.get("token_access_type") == "offline":
            refresh = self.issue_token(
                "refresh",
                client_id=client.client_id,
                user=code.user,
                scope=code.scope,
                grant_id=grant_id,
                lifetime=None,
                extra=extra,
            )
            payload["refresh_token"] = refresh.value
        return json_response(200, payload)

    def _refresh(
        self, client: ClientRegistration, params: dict[str, str], *, has_secret: bool
    ) -> Response:
        record = self.live_token(params.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.error_response(
                "invalid_grant", "refresh token is invalid or revoked"
            )
        if not has_secret and not record.extra.get("pkce"):
            return self.error_response("invalid_request", NO_AUTH_MESSAGE)
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=record.user,
            scope=record.scope,
            grant_id=record.grant_id,
            lifetime=self.access_token_lifetime,
            extra=record.extra,
        )
        # The refresh token does not rotate, so the response has none.
        return json_response(
            200,
            {
                "access_token": access.value,
                "expires_in": self.access_token_lifetime,
                "token_type": "bearer",
            },
        )

    # -------------------------------------------------------------- revocation

    def handle_revoke(self, request: RecordedRequest) -> Response:
        record: TokenRecord | None = self.live_token(request.bearer_token, "access")
        if record is None:
            return json_response(
                401,
                {
                    "error_summary": "invalid_access_token/",
                    "error": {".tag": "invalid_access_token"},
                },
            )
        # This endpoint takes no arguments: the body must be empty, or the JSON
        # null. NOTE: an empty body declared as application/json is rejected as
        # undecodable JSON, which is how Dropbox's other no-argument RPC endpoints
        # behave.
        body = request.body.strip()
        empty_json = not body and request.content_type == "application/json"
        if body not in (b"", b"null") or empty_json:
            message = (
                'Error in call to API function "auth/token/revoke": request body: '
                "expected no body or null."
            )
            return Response(
                400, message.encode(), {"Content-Type": "text/plain; charset=utf-8"}
            )

        self.revoke_grant(record.grant_id)
        self.revoked_tokens.append(record.value)
        return json_response(200, None)
