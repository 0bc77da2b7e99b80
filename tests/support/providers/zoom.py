"""Fake Zoom OAuth server.

Routes: ``/oauth/authorize``, ``/oauth/token``, ``/oauth/revoke`` and
``/oauth/devicecode``. Behaviour follows Zoom's OAuth documentation
(developers.zoom.us/docs/integrations/oauth/), its server-to-server OAuth page and
its OAuth error-message table:

- Every call to the token, revoke and device-code endpoints authenticates the
  client with HTTP Basic ``client_id:client_secret``. Grant parameters may be in
  the query string or in a form body.
- Errors are JSON of the form ``{"reason": "...", "error": "..."}``.
- User tokens last one hour. Refresh tokens rotate: a refresh returns a new one and
  the used one is rejected with the reason "Invalid Token!". A new sign-in by the
  same user revokes that user's earlier tokens.
- ``grant_type=account_credentials`` (server-to-server) returns a one-hour token
  without a refresh token.
- PKCE: when ``code_challenge_method`` is omitted Zoom assumes ``plain``, and the
  code exchange still needs the client secret.
- The redirect URI must be on the app's allow list, exactly. There is no
  out-of-band redirect.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from .base import (
    DEVICE_CODE_GRANT_TYPE,
    ClientRegistration,
    ProviderServer,
    RecordedRequest,
    Response,
    add_query_params,
    error_page,
    generate_user_code,
    json_response,
    redirect_response,
    split_scope,
)

# Zoom's user codes in its device-flow examples are 8 upper-case characters.
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class ZoomServer(ProviderServer):
    """Fake of zoom.us OAuth endpoints.

    Knobs (constructor arguments and attributes of the same name):

    - ``invalidate_previous_s2s`` (default True): each new server-to-server token
      revokes the earlier ones of the same client, the behaviour Zoom had before
      it allowed several live tokens.
    - ``reject_tokens_in_query`` (default True): a refresh token or a token to
      revoke in the query string is rejected, as Zoom announced for February 2023.
    - ``device_flow_enabled`` (default True): Zoom enables the device flow per app
      on request.

    Other attributes: ``account_id`` (the account that server-to-server requests
    must name), ``app_scopes`` (granted when the authorize request has no scope)
    and ``s2s_request_count``.
    """

    service = "zoom"
    # Zoom's example responses show expires_in 3599, one hour less a second.
    access_token_lifetime = 3599
    device_code_lifetime = 900
    device_interval = 5
    access_token_prefix = "zoom-at-"
    refresh_token_prefix = "zoom-rt-"

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        invalidate_previous_s2s: bool = True,
        reject_tokens_in_query: bool = True,
        device_flow_enabled: bool = True,
        access_token_lifetime: int | None = None,
    ) -> None:
        super().__init__(
            redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime
        )
        self.invalidate_previous_s2s = invalidate_previous_s2s
        self.reject_tokens_in_query = reject_tokens_in_query
        self.device_flow_enabled = device_flow_enabled
        self.account_id = "acct-" + secrets.token_urlsafe(12)
        self.app_scopes: tuple[str, ...] = (
            "meeting:read:meeting",
            "cloud_recording:read:list_user_recordings",
        )
        self.s2s_request_count = 0

    def register_routes(self) -> None:
        self.add_route("GET", "/oauth/authorize", "authorize", self.handle_authorize)
        self.add_route("POST", "/oauth/token", "token", self.handle_token)
        self.add_route("POST", "/oauth/revoke", "revoke", self.handle_revoke)
        self.add_route("POST", "/oauth/devicecode", "device", self.handle_device_code)

    @property
    def authorize_url(self) -> str:
        return self.url("/oauth/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/oauth/token")

    @property
    def revoke_url(self) -> str:
        return self.url("/oauth/revoke")

    @property
    def device_authorization_url(self) -> str:
        return self.url("/oauth/devicecode")

    @property
    def verification_uri(self) -> str:
        return self.url("/oauth_device")

    # ------------------------------------------------------------ error shapes

    def error_response(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        request: RecordedRequest | None = None,
    ) -> Response:
        return json_response(
            status if status is not None else 400,
            {"reason": description, "error": error},
        )

    def rate_limited_response(self, retry_after: float | None) -> Response:
        # Shape of Zoom's REST API rate-limit errors.
        return json_response(
            429,
            {
                "code": 429,
                "message": "You have reached the maximum per-second rate limit "
                "for this API. Try again later.",
            },
        )

    # --------------------------------------------------------------- authorize

    def handle_authorize(self, request: RecordedRequest) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(400, "invalid_client", "Invalid client_id.")

        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            # Zoom's error 4709: the redirect_uri is missing, null or incorrect.
            return error_page(400, "invalid_request", "Redirect URI mismatch.")
        if params.get("response_type") != "code":
            return error_page(
                400, "unsupported_response_type", "response_type must be code."
            )
        challenge = params.get("code_challenge")

        method = None
        if challenge:
            # Zoom assumes plain when code_challenge_method is omitted.
            method = params.get("code_challenge_method") or "plain"
            if method not in ("plain", "S256"):
                return error_page(
                    400, "invalid_request", f"Invalid code_challenge_method {method}."
                )

        state = params.get("state")
        if self.take_denial():
            location = add_query_params(
                redirect_uri, {"error": "access_denied", "state": state}
            )
            return redirect_response(location)

        scope = split_scope(params.get("scope")) or self.app_scopes

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=redirect_uri,
            params=params,
            scope=scope,
            code_challenge_method=method,
        )
        return redirect_response(
            add_query_params(redirect_uri, {"code": code.value, "state": state})
        )

    # ------------------------------------------------------------------- token

    def _authenticate(self, request: RecordedRequest) -> ClientRegistration | Response:
        """Return the client named by the Basic header, or the error response."""
        credentials = request.basic_auth
        if credentials is None:
            # Zoom's error 4706. Credentials in the body do not count.
            return self.error_response(
                "invalid_client", "Client ID or client secret is missing.", status=401
            )
        client_id, client_secret = credentials
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client_secret, client.client_secret
        ):
            return self.error_response(
                "invalid_client", "Invalid client_id or client_secret", status=401
            )
        return client

    def handle_token(self, request: RecordedRequest) -> Response:
        client = self._authenticate(request)
        if isinstance(client, Response):
            return client
        if self.reject_tokens_in_query and "refresh_token" in request.query:
            return self.error_response(
                "invalid_request",
                "Invalid refresh token, this refresh token is not supported as "
                "query parameter string.",
            )
        params = {**request.query_params, **request.form_params}
        grant_type = params.get("grant_type")
        if not grant_type:
            return self.error_response("invalid_request", "Missing grant type.")
        if grant_type == "authorization_code":
            return self._exchange_code(client, params)
        if grant_type == "refresh_token":
            return self._refresh(client, params)
        if grant_type == "account_credentials":
            return self._account_credentials(client, params)
        if grant_type == DEVICE_CODE_GRANT_TYPE:
            return self._poll_device(client, params)
        return self.error_response(
            "unsupported_grant_type", "Grant type is not supported from token endpoint."
        )

    def _exchange_code(
        self, client: ClientRegistration, params: dict[str, str]
    ) -> Response:
        value = params.get("code", "")
        code = self.redeem_code(value, client.client_id)
        if code is None:
            return self.error_response(
                "invalid_request", f"Invalid authorization code {value}"
            )
        if params.get("redirect_uri") != code.redirect_uri:
            return self.error_response("invalid_request", "Redirect URI mismatch.")
        # NOTE: Zoom's error table has no entry for a failed PKCE check, so the
        # reason text here is the fake's own.
        if self.check_pkce(code, params.get("code_verifier")) is not None:
            return self.error_response("invalid_request", "Invalid code verifier.")
        return self._user_tokens(client, code.user, code.scope)

    def _user_tokens(
        self, client: ClientRegistration, user: str, scope: tuple[str, ...]
    ) -> Response:
        # A new sign-in revokes the same user's earlier tokens for this app.
        for record in list(self.tokens.values()):
            if (
                record.client_id == client.client_id
                and record.user == user
                and record.extra.get("flow") == "user"
            ):
                record.revoked = True
        return self._issue_user_tokens(client, user, scope, self.new_grant_id())

    def _issue_user_tokens(
        self,
        client: ClientRegistration,
        user: str,
        scope: tuple[str, ...],
        grant_id: str,
    ) -> Response:
        extra = {"flow": "user"}
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            lifetime=self.access_token_lifetime,
            extra=extra,
        )
        refresh = self.issue_token(
            "refresh",
            client_id=client.client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            lifetime=None,
            extra=extra,
        )
        return json_response(
            200,
            {
                "access_token": access.value,
                "token_type": "bearer",
                "refresh_token": refresh.value,
                "expires_in": self.access_token_lifetime,
                "scope": " ".join(scope),
                # Zoom sends its REST API base URL here. The fake sends its own, so
                # nothing in a response points at a real host.
                "api_url": self.base_url,
            },
        )

    def _refresh(self, client: ClientRegistration, params: dict[str, str]) -> Response:
        record = self.live_token(params.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.error_response("invalid_request", "Invalid Token!")
        record.used = True
        return self._issue_user_tokens(
            client, record.user or self.current_user, record.scope, record.grant_id
        )

    def _account_credentials(
        self, client: ClientRegistration, params: dict[str, str]
    ) -> Response:
        self.s2s_request_count += 1
        account_id = params.get("account_id")
        if not account_id:
            return self.error_response("invalid_request", "Missing account_id.")
        # NOTE: the reason text for an unknown account is the fake's own.
        if account_id != self.account_id:
            return self.error_response("invalid_request", "Invalid account_id.")
        if self.invalidate_previous_s2s:
            for record in self.tokens.values():
                if (
                    record.client_id == client.client_id
                    and record.extra.get("flow") == "s2s"
                ):
                    record.revoked = True
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=None,
            scope=self.app_scopes,
            grant_id=self.new_grant_id(),
            lifetime=self.access_token_lifetime,
            extra={"flow": "s2s", "account_id": account_id},
        )
        return json_response(
            200,
            {
                "access_token": access.value,
                "token_type": "bearer",
                "expires_in": self.access_token_lifetime,
                "scope": " ".join(self.app_scopes),
                "api_url": self.base_url,
            },
        )

    # ------------------------------------------------------------- device flow

    def handle_device_code(self, request: RecordedRequest) -> Response:
        client = self._authenticate(request)
        if isinstance(client, Response):
            return client
        params = {**request.query_params, **request.form_params}
        named_client = params.get("client_id")
        if named_client is not None and named_client != client.client_id:
            return self.error_response(
                "invalid_client",
                "Client ID does not match authenticated client.",
                status=401,
            )
        # NOTE: Zoom does not document the response for an app without the device
        # flow, so the error and reason here are the fake's own.
        if not self.device_flow_enabled:
            return self.error_response(
                "unauthorized_client",
                "Device authorization is not enabled for this app.",
            )
        user_code = generate_user_code(1, 8, USER_CODE_ALPHABET)

        device = self.start_device_authorization(
            client.client_id,
            split_scope(params.get("scope")) or self.app_scopes,
            user_code=user_code,
            lifetime=self.device_code_lifetime,
            interval=self.device_interval,
            params=params,
        )
        return json_response(
            200,
            {
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": self.verification_uri,
                "verification_uri_complete": add_query_params(
                    self.verification_uri, {"user_code": device.user_code}
                ),
                "expires_in": self.device_code_lifetime,
                "interval": device.interval,
            },
        )

    def _poll_device(
        self, client: ClientRegistration, params: dict[str, str]
    ) -> Response:
        outcome, device = self.poll_device(
            params.get("device_code"), client.client_id, enforce_interval=True
        )
        # NOTE: Zoom's pages show the RFC 8628 error codes but not the HTTP status
        # or reason texts of device-flow errors. The fake uses 400 and its own text.
        if outcome == "invalid" or device is None:
            return self.error_response("invalid_grant", "Invalid device code.")
        if outcome == "expired":
            return self.error_response("expired_token", "The device code has expired.")
        if outcome == "slow_down":
            return self.error_response("slow_down", "Polling too frequently.")
        if outcome == "denied":
            return self.error_response("access_denied", "The user denied the request.")
        if outcome == "pending":
            return self.error_response(
                "authorization_pending", "User has not yet authorized the device."
            )
        user = device.extra.get("user", self.current_user)
        return self._user_tokens(client, user, device.scope)

    # -------------------------------------------------------------- revocation

    def handle_revoke(self, request: RecordedRequest) -> Response:
        client = self._authenticate(request)
        if isinstance(client, Response):
            return client
        if self.reject_tokens_in_query and "token" in request.query:
            return self.error_response(
                "invalid_request",
                "Invalid token, this token is not supported as query parameter string.",
            )
        token = request.form_params.get("token")
        if not token:
            # Zoom's error 4700.
            return self.error_response("invalid_request", "Token cannot be empty.")
        record = self.tokens.get(token)
        if record is None or record.client_id != client.client_id:
            return self.error_response("invalid_request", "Invalid Token!")

        self.revoke_grant(record.grant_id)
        self.revoked_tokens.append(token)
        return json_response(200, {"status": "success"})
