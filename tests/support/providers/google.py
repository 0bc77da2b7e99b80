"""Fake Google OAuth server: /o/oauth2/v2/auth, /token, /device/code and /revoke.

Behaviour follows Google's "OAuth 2.0 for Mobile & Desktop Apps"
(developers.google.com/identity/protocols/oauth2/native-app), "Using OAuth 2.0 for
Web Server Applications" (offline access), the OOB migration guide and "OAuth 2.0
for TV and Limited-Input Device Applications":

- The out-of-band redirect ``urn:ietf:wg:oauth:2.0:oob`` is blocked with
  ``Error 400: invalid_request``. Desktop clients use a loopback redirect on any
  port without registering it.
- The client secret is required at code exchange and refresh, even with PKCE. It
  may be sent as form fields or with HTTP Basic.
- A refresh token comes only with ``access_type=offline``, and only on the first
  consent of a user for a client unless ``prompt=consent`` is sent. Refresh
  responses carry no new refresh token.
- Errors are JSON ``{"error": "...", "error_description": "..."}``.
- The device flow works only for a "TVs and Limited Input devices" client and a
  short list of scopes. Its response names the URL ``verification_url``, and
  the polls send the client secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from .base import (
    DEVICE_CODE_GRANT_TYPE,
    OOB_REDIRECT_URIS,
    AuthorizationCode,
    ClientRegistration,
    ProviderServer,
    RecordedRequest,
    Response,
    add_query_params,
    error_page,
    generate_user_code,
    is_loopback_uri,
    json_response,
    redirect_response,
    split_scope,
)

GOOGLE_SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Scopes that Google's limited-input device page lists as allowed, in part.
# NOTE: Google changes this list. Set GoogleServer.device_allowed_scopes to follow
# a newer list.
DEVICE_ALLOWED_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        GOOGLE_SCOPE_PREFIX + "userinfo.email",
        GOOGLE_SCOPE_PREFIX + "userinfo.profile",
        GOOGLE_SCOPE_PREFIX + "drive.file",
        GOOGLE_SCOPE_PREFIX + "drive.appdata",
        GOOGLE_SCOPE_PREFIX + "youtube",
        GOOGLE_SCOPE_PREFIX + "youtube.readonly",
    }
)

CLIENT_TYPES = ("desktop", "web", "tv")
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


class GoogleServer(ProviderServer):
    """Fake of Google's OAuth 2.0 endpoints.

    Knobs (constructor arguments and attributes of the same name):

    - ``client_type``: ``"desktop"`` (default, loopback redirects on any port),
      ``"web"`` (only registered redirect URIs) or ``"tv"`` ("TVs and Limited
      Input devices", the only type allowed to use the device flow).
    - ``refresh_token_lifetime``: seconds, or None (default) for no expiry. Google
      expires refresh tokens after 7 days (604800 s) for apps whose publishing
      status is "Testing".
    - ``max_refresh_tokens_per_user`` (default 100): issuing one more revokes the
      oldest live one of that user and client.
    - ``device_allowed_scopes``: scopes accepted by the device flow.
    - ``include_verification_uri`` (default False): also send the RFC 8628 field
      ``verification_uri`` next to Google's ``verification_url``.

    ``offline_consents`` contains the (user, client_id) pairs that already got a
    refresh token.
    """

    service = "google"
    default_redirect_uris: tuple[str, ...] = ()
    # Google's token responses show expires_in 3599.
    access_token_lifetime = 3599
    device_code_lifetime = 1800
    device_interval = 5
    access_token_prefix = "ya29."
    refresh_token_prefix = "1//"

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        client_type: str = "desktop",
        refresh_token_lifetime: float | None = None,
        max_refresh_tokens_per_user: int = 100,
        include_verification_uri: bool = False,
        access_token_lifetime: int | None = None,
    ) -> None:
        if client_type not in CLIENT_TYPES:
            raise ValueError(
                f"invalid client_type {client_type!r}: expected one of {CLIENT_TYPES}"
            )
        super().__init__(
            redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime
        )
        self.client_type = client_type
        self.refresh_token_lifetime = refresh_token_lifetime
        self.max_refresh_tokens_per_user = max_refresh_tokens_per_user
        self.include_verification_uri = include_verification_uri
        self.device_allowed_scopes: set[str] = set(DEVICE_ALLOWED_SCOPES)
        self.offline_consents: set[tuple[str, str]] = set()

    def generate_client_id(self) -> str:
        number = "".join(secrets.choice("0123456789") for _ in range(12))
        return f"{number}-{secrets.token_hex(16)}.apps.googleusercontent.com"

    def register_routes(self) -> None:
        self.add_route("GET", "/o/oauth2/v2/auth", "authorize", self.handle_authorize)
        self.add_route("POST", "/token", "token", self.handle_token)
        self.add_route("POST", "/device/code", "device", self.handle_device_code)
        self.add_route("POST", "/revoke", "revoke", self.handle_revoke)

    @property
    def authorize_url(self) -> str:
        return self.url("/o/oauth2/v2/auth")

    @property
    def token_url(self) -> str:
        return self.url("/token")

    @property
    def device_authorization_url(self) -> str:
        return self.url("/device/code")

    @property
    def revoke_url(self) -> str:
        return self.url("/revoke")

    @property
    def verification_url(self) -> str:
        return self.url("/device")

    # --------------------------------------------------------------- authorize

    def redirect_uri_allowed(self, client: ClientRegistration, uri: str) -> bool:
        if uri in client.redirect_uris:
            return True
        # NOTE: Google's native-app guide shows loopback redirects without a path
        # and libraries add one such as "/". The fake accepts any path.
        return self.client_type == "desktop" and is_loopback_uri(uri)

    def handle_authorize(self, request: RecordedRequest) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(401, "invalid_client", "The OAuth client was not found.")

        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            return error_page(
                400, "invalid_request", "Missing required parameter: redirect_uri"
            )
        if redirect_uri in OOB_REDIRECT_URIS:
            return error_page(
                400,
                "invalid_request",
                "The out-of-band (OOB) flow is blocked. Use a loopback redirect URI.",
            )
        if not self.redirect_uri_allowed(client, redirect_uri):
            return error_page(
                400,
                "redirect_uri_mismatch",
                f"The redirect URI {redirect_uri} is not registered for this client.",
            )
        if params.get("response_type") != "code":
            return error_page(
                400, "unsupported_response_type", "response_type must be code."
            )

        scope = split_scope(params.get("scope"))
        if not scope:
            return error_page(
                400, "invalid_request", "Missing required parameter: scope"
            )
        access_type = params.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return error_page(
                400, "invalid_request", f"Invalid access_type: {access_type}"
            )

        method = None
        if params.get("code_challenge"):
            method = params.get("code_challenge_method") or "plain"
            if method not in ("plain", "S256"):
                return error_page(
                    400, "invalid_request", f"Invalid code_challenge_method: {method}"
                )

        state = params.get("state")
        if self.take_denial():
            return redirect_response(
                add_query_params(
                    redirect_uri, {"error": "access_denied", "state": state}
                )
            )

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=redirect_uri,
            params=params,
            scope=scope,
            code_challenge_method=method,
            prefix="4/",
        )
        location = add_query_params(
            redirect_uri, {"state": state, "code": code.value, "scope": " ".join(scope)}
        )
        return redirect_response(location)

    # ------------------------------------------------------------------- token

    def _authenticate(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> ClientRegistration | Response:
        """Return the client after checking its secret, or the error response."""
        basic = request.basic_auth
        client_id = basic[0] if basic else params.get("client_id")
        secret = basic[1] if basic else params.get("client_secret")
        if not client_id:
            return self.error_response(
                "invalid_request", "Could not determine client ID from request."
            )
        client = self.clients.get(client_id)
        if client is None:
            return self.error_response(
                "invalid_client", "The OAuth client was not found.", status=401
            )
        if not secret:
            return self.error_response("invalid_request", "client_secret is missing.")
        if not secrets.compare_digest(secret, client.client_secret):
            return self.error_response("invalid_client", "Unauthorized", status=401)
        return client

    def handle_token(self, request: RecordedRequest) -> Response:
        if request.form is None:
            return self.error_response(
                "invalid_request",
                "The token request body must be application/x-www-form-urlencoded.",
            )
        params = request.form_params
        client = self._authenticate(request, params)
        if isinstance(client, Response):
            return client
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client, params)
        if grant_type == "refresh_token":
            return self._refresh(client, params)
        if grant_type == DEVICE_CODE_GRANT_TYPE:
            return self._poll_device(client, params)
        if not grant_type:
            return self.error_response(
                "invalid_request", "Missing required parameter: grant_type"
            )
        return self.error_response(
            "unsupported_grant_type", f"Invalid grant_type: {grant_type}"
        )

    def _exchange_code(
        self, client: ClientRegistration, params: dict[str, str]
    ) -> Response:
        code = self.redeem_code(params.get("code"), client.client_id)
        if code is None:
            return self.error_response("invalid_grant", "Malformed auth code.")
        if params.get("redirect_uri") != code.redirect_uri:
            return self.error_response("redirect_uri_mismatch", "Bad Request")
        pkce_problem = self.check_pkce(code, params.get("code_verifier"))
        if pkce_problem == "missing":
            return self.error_response("invalid_grant", "Missing code verifier.")
        if pkce_problem == "mismatch":
            return self.error_response("invalid_grant", "Invalid code verifier.")
        return self._issue_tokens(
            client, code.user, code.scope, with_refresh=self._wants_refresh_token(code)
        )

    def _wants_refresh_token(self, code: AuthorizationCode) -> bool:
        if code.params.get("access_type") != "offline":
            return False
        prompts = split_scope(code.params.get("prompt"))
        return (
            "consent" in prompts
            or (code.user, code.client_id) not in self.offline_consents
        )

    def _issue_tokens(
        self,
        client: ClientRegistration,
        user: str,
        scope: tuple[str, ...],
        *,
        with_refresh: bool,
    ) -> Response:
        grant_id = self.new_grant_id()
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            lifetime=self.access_token_lifetime,
        )
        payload: dict[str, object] = {
            "access_token": access.value,
            "expires_in": self.access_token_lifetime,
            "scope": " ".join(scope),
            "token_type": "Bearer",
        }
        if with_refresh:
            refresh = self.issue_token(
                "refresh",
                client_id=client.client_id,
                user=user,
                scope=scope,
                grant_id=grant_id,
                lifetime=self.refresh_token_lifetime,
            )
            payload["refresh_token"] = refresh.value
            self.offline_consents.add((user, client.client_id))
            self._enforce_refresh_token_limit(client.client_id, user)
        return json_response(200, payload)

    def _enforce_refresh_token_limit(self, client_id: str, user: str) -> None:
        live = [
            record
            for record in self.tokens.values()
            if record.kind == "refresh"
            and record.client_id == client_id
            and record.user == user
            and self.is_live(record)
        ]
        live.sort(key=lambda record: record.issued_at)
        excess = len(live) - self.max_refresh_tokens_per_user
        for record in live[: max(excess, 0)]:
            record.revoked = True

    def _refresh(self, client: ClientRegistration, params: dict[str, str]) -> Response:
        record = self.live_token(params.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.error_response(
                "invalid_grant", "Token has been expired or revoked."
            )
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=record.user,
            scope=record.scope,
            grant_id=record.grant_id,
            lifetime=self.access_token_lifetime,
        )
        return json_response(
            200,
            {
                "access_token": access.value,
                "expires_in": self.access_token_lifetime,
                "scope": " ".join(record.scope),
                "token_type": "Bearer",
            },
        )

    # ------------------------------------------------------------- device flow

    def handle_device_code(self, request: RecordedRequest) -> Response:
        params = request.form_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return self.error_response(
                "invalid_client", "The OAuth client was not found.", status=401
            )

        if self.client_type != "tv":
            return self.error_response(
                "invalid_client", "Invalid client type.", status=401
            )

        scope = split_scope(params.get("scope"))
        if not scope:
            return self.error_response(
                "invalid_request", "Missing required parameter: scope"
            )
        rejected = [item for item in scope if item not in self.device_allowed_scopes]
        if rejected:
            return self.error_response(
                "invalid_scope", f"Invalid device flow scope: {rejected[0]}"
            )

        device = self.start_device_authorization(
            client.client_id,
            scope,
            user_code=generate_user_code(3, 3, USER_CODE_ALPHABET),
            lifetime=self.device_code_lifetime,
            interval=self.device_interval,
            params=params,
        )
        payload: dict[str, object] = {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "expires_in": self.device_code_lifetime,
            "interval": device.interval,
            "verification_url": self.verification_url,
        }
        if self.include_verification_uri:
            payload["verification_uri"] = self.verification_url
        return json_response(200, payload)

    def _poll_device(
        self, client: ClientRegistration, params: dict[str, str]
    ) -> Response:
        outcome, device = self.poll_device(
            params.get("device_code"), client.client_id, enforce_interval=True
        )
        # Google's device guide lists 428 for authorization_pending and 403 for
        # access_denied and slow_down.
        # NOTE: the guide gives no status for expired_token, so the fake uses 400.
        if outcome == "invalid" or device is None:
            return self.error_response("invalid_grant", "Bad Request")
        if outcome == "expired":
            return self.error_response("expired_token", "Bad Request")
        if outcome == "slow_down":
            return self.error_response("slow_down", "Forbidden", status=403)
        if outcome == "denied":
            return self.error_response("access_denied", "Forbidden", status=403)
        if outcome == "pending":
            return self.error_response(
                "authorization_pending", "Precondition Required", status=428
            )
        user = device.extra.get("user", self.current_user)
        return self._issue_tokens(client, user, device.scope, with_refresh=True)

    # -------------------------------------------------------------- revocation

    def handle_revoke(self, request: RecordedRequest) -> Response:
        # Google's guide sends the token as a query parameter of a form POST. A
        # form field works too. No client authentication is needed.
        token = request.query_params.get("token") or request.form_params.get("token")
        if not token:
            return self.error_response(
                "invalid_request", "Missing required parameter: token"
            )
        record = self.tokens.get(token)
        if record is None or not self.is_live(record):
            return self.error_response("invalid_token", "Token expired or revoked")
        # Revoking either token ends the whole grant, refresh token included.
        self.revoke_grant(record.grant_id)
        if record.user is not None:
            self.offline_consents.discard((record.user, record.client_id))
        self.revoked_tokens.append(token)
        return json_response(200, {})
