"""Fake GitHub OAuth App server.

Routes: ``/login/oauth/authorize``, ``/login/oauth/access_token``,
``/login/device/code`` and the REST API's ``DELETE /applications/{client_id}/token``
(on api.github.com in reality, on the same fake server here). Behaviour follows
GitHub's "Authorizing OAuth apps", "Refreshing user access tokens" and "REST API
endpoints for OAuth authorizations" pages on docs.github.com:

- The token endpoint responds form-encoded
  (``access_token=...&scope=repo%2Cgist&token_type=bearer``) unless the request
  sends ``Accept: application/json`` (or ``application/xml``). It reports errors
  with HTTP 200 and an ``error`` field.
- The granted scope is comma-separated.
- Classic tokens carry no ``expires_in`` and no refresh token. With
  ``expiring_tokens`` they last 8 hours and come with a refresh token that
  rotates on every refresh.
- PKCE supports S256 only, and the code exchange still needs the client secret.
  The device flow sends no secret.
- A redirect_uri must have the callback URL's host and port, and its path must be
  the callback path or below it. On a loopback callback any port is accepted.
- At most 10 live tokens per user, app and scope: the eleventh revokes the oldest.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from .base import (
    DEVICE_CODE_GRANT_TYPE,
    LOOPBACK_HOSTS,
    ClientRegistration,
    ProviderServer,
    RecordedRequest,
    Response,
    add_query_params,
    form_response,
    generate_user_code,
    html_response,
    json_response,
    redirect_response,
    split_scope,
)

DOCS = "https://docs.github.com/apps/oauth-apps/maintaining-oauth-apps"
TROUBLESHOOTING = DOCS + "/troubleshooting-oauth-app-access-token-request-errors"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"

ERROR_URIS = {
    "incorrect_client_credentials": TROUBLESHOOTING + "#incorrect-client-credentials",
    "redirect_uri_mismatch": TROUBLESHOOTING + "#redirect-uri-mismatch",
    "bad_verification_code": TROUBLESHOOTING + "#bad-verification-code",
}


def redirect_uri_matches(callback_url: str, redirect_uri: str) -> bool:
    """Apply GitHub's redirect_uri rules against one registered callback URL.

    The scheme must match. The host must be the callback host or a subdomain of
    it. The port must match, except on a loopback host where any port is
    accepted. The path must be the callback path or a subdirectory of it.
    """
    callback = urllib.parse.urlsplit(callback_url)
    requested = urllib.parse.urlsplit(redirect_uri)
    callback_host = callback.hostname or ""
    requested_host = requested.hostname or ""
    if requested.scheme != callback.scheme:
        return False
    if callback_host in LOOPBACK_HOSTS:
        if requested_host != callback_host:
            return False
    else:
        if requested_host != callback_host and not requested_host.endswith(
            "." + callback_host
        ):
            return False
        try:
            if requested.port != callback.port:
                return False
        except ValueError:
            return False
    callback_path = callback.path or "/"
    requested_path = requested.path or "/"
    if requested_path == callback_path:
        return True
    return requested_path.startswith(callback_path.rstrip("/") + "/")


class GitHubServer(ProviderServer):
    """Fake of github.com's OAuth endpoints for one OAuth App.

    Knobs (constructor arguments and attributes of the same name):

    - ``expiring_tokens`` (default False): classic tokens that never expire, or
      8-hour tokens with rotating refresh tokens.
    - ``device_flow_enabled`` (default True): GitHub enables the device flow per
      app in its settings.
    - ``max_tokens_per_scope`` (default 10).

    The registered callback URL is ``client.redirect_uris[0]``.
    """

    service = "github"
    default_redirect_uris: tuple[str, ...] = ("http://127.0.0.1/callback",)
    # GitHub reports token-endpoint errors with HTTP 200.
    default_error_status = 200
    access_token_prefix = "gho_"
    refresh_token_prefix = "ghr_"
    # Lifetimes of expiring user tokens: 8 hours, and 6 months for refresh tokens.
    access_token_lifetime = 28800
    refresh_token_lifetime = 15897600
    device_code_lifetime = 900
    device_interval = 5

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        expiring_tokens: bool = False,
        device_flow_enabled: bool = True,
        max_tokens_per_scope: int = 10,
        access_token_lifetime: int | None = None,
    ) -> None:
        super().__init__(
            redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime
        )
        self.expiring_tokens = expiring_tokens
        self.device_flow_enabled = device_flow_enabled
        self.max_tokens_per_scope = max_tokens_per_scope

    def generate_client_id(self) -> str:
        return "Ov23li" + secrets.token_hex(7)

    def register_routes(self) -> None:
        self.add_route(
            "GET", "/login/oauth/authorize", "authorize", self.handle_authorize
        )
        self.add_route("POST", "/login/oauth/access_token", "token", self.handle_token)
        self.add_route("POST", "/login/device/code", "device", self.handle_device_code)
        self.add_route(
            "DELETE",
            r"/applications/(?P<client_id>[^/]+)/token",
            "revoke",
            self.handle_revoke,
        )

    @property
    def authorize_url(self) -> str:
        return self.url("/login/oauth/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/login/oauth/access_token")

    @property
    def device_authorization_url(self) -> str:
        return self.url("/login/device/code")

    @property
    def revoke_url(self) -> str:
        return self.url(f"/applications/{self.client_id}/token")

    @property
    def api_base_url(self) -> str:
        """Stand-in for https://api.github.com, which serves the revocation API."""
        return self.base_url

    @property
    def verification_uri(self) -> str:
        return self.url("/login/device")

    # ---------------------------------------------------------- response format

    def respond(
        self,
        request: RecordedRequest | None,
        payload: Mapping[str, Any],
        status: int = 200,
    ) -> Response:
        """Encode payload in the format of the Accept header: JSON, XML or a form."""
        accept = (request.header("accept") if request else None) or ""
        if "application/json" in accept:
            return json_response(status, payload)
        if "application/xml" in accept:
            fields = "".join(
                f"<{key}>{escape(str(value))}</{key}>" for key, value in payload.items()
            )
            body = f"<OAuth>{fields}</OAuth>".encode()
            return Response(
                status,
                body,
                {
                    "Content-Type": "application/xml; charset=utf-8",
                    "Cache-Control": "no-store",
                },
            )
        return form_response(status, payload)

    def error_response(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        request: RecordedRequest | None = None,
    ) -> Response:
        payload = {
            "error": error,
            "error_description": description,
            "error_uri": ERROR_URIS.get(error, TROUBLESHOOTING),
        }
        return self.respond(request, payload, status if status is not None else 200)

    def rate_limited_response(self, retry_after: float | None) -> Response:
        return json_response(
            429,
            {
                "message": "API rate limit exceeded.",
                "documentation_url": "https://docs.github.com/rest/rate-limit",
            },
        )

    # --------------------------------------------------------------- authorize

    def handle_authorize(self, request: RecordedRequest) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return html_response(404, "Page not found", "<h1>404</h1><p>Not Found</p>")
        callback_url = client.redirect_uris[0]
        state = params.get("state")

        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and not any(
            redirect_uri_matches(uri, redirect_uri) for uri in client.redirect_uris
        ):
            # GitHub sends the user to the registered callback URL with the error.
            location = add_query_params(
                callback_url,
                {
                    "error": "redirect_uri_mismatch",
                    "error_description": "The redirect_uri MUST match the registered "
                    "callback URL for this application.",
                    "error_uri": ERROR_URIS["redirect_uri_mismatch"],
                    "state": state,
                },
            )
            return redirect_response(location)

        target = redirect_uri or callback_url
        if (
            params.get("code_challenge")
            and params.get("code_challenge_method") != "S256"
        ):
            # NOTE: GitHub documents S256 as the only method but not its response to
            # another one, so the fake redirects with invalid_request.
            location = add_query_params(
                target,
                {
                    "error": "invalid_request",
                    "error_description": "code_challenge_method must be S256.",
                    "state": state,
                },
            )
            return redirect_response(location)

        if self.take_denial():
            location = add_query_params(
                target,
                {
                    "error": "access_denied",
                    "error_description": "The user has denied your application access.",
                    "error_uri": DOCS + "/troubleshooting-authorization-request-errors",
                    "state": state,
                },
            )
            return redirect_response(location)

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=target,
            params=params,
            scope=split_scope(params.get("scope"), " ,"),
            code_challenge_method="S256" if params.get("code_challenge") else None,
        )
        return redirect_response(
            add_query_params(target, {"code": code.value, "state": state})
        )

    # ------------------------------------------------------------------- token

    @staticmethod
    def _params(request: RecordedRequest) -> dict[str, str]:
        """Merge query, form and JSON parameters, which GitHub all accepts."""
        json_params = {key: str(value) for key, value in request.json_params.items()}
        return {**request.query_params, **request.form_params, **json_params}

    def _authenticate(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> ClientRegistration | Response:
        basic = request.basic_auth
        client_id = params.get("client_id") or (basic[0] if basic else None)
        secret = params.get("client_secret") or (basic[1] if basic else None)
        client = self.clients.get(client_id or "")
        if (
            client is None
            or not secret
            or not secrets.compare_digest(secret, client.client_secret)
        ):
            return self.error_response(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                request=request,
            )
        return client

    def handle_token(self, request: RecordedRequest) -> Response:
        params = self._params(request)
        grant_type = params.get("grant_type")
        if grant_type == DEVICE_CODE_GRANT_TYPE:
            return self._poll_device(request, params)
        client = self._authenticate(request, params)
        if isinstance(client, Response):
            return client
        if grant_type in (None, "authorization_code"):
            return self._exchange_code(request, client, params)
        if grant_type == "refresh_token":
            return self._refresh(request, client, params)
        return self.error_response(
            "unsupported_grant_type",
            f"The grant type {grant_type!r} is not supported.",
            request=request,
        )

    def _exchange_code(
        self,
        request: RecordedRequest,
        client: ClientRegistration,
        params: dict[str, str],
    ) -> Response:
        code = self.redeem_code(params.get("code"), client.client_id)
        if code is None:
            return self.error_response(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
                request=request,
            )

        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None and redirect_uri != code.effective_redirect_uri:
            return self.error_response(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this "
                "application.",
                request=request,
            )
        # NOTE: GitHub does not document the error for a failed PKCE check. The fake
        # returns bad_verification_code, as for any code that cannot be redeemed.
        if self.check_pkce(code, params.get("code_verifier")) is not None:
            return self.error_response(
                "bad_verification_code",
                "The code_verifier does not match the code_challenge.",
                request=request,
            )
        return self._issue(request, client, code.user, code.scope, self.new_grant_id())

    def _issue(
        self,
        request: RecordedRequest,
        client: ClientRegistration,
        user: str,
        scope: tuple[str, ...],
        grant_id: str,
    ) -> Response:
        lifetime = self.access_token_lifetime if self.expiring_tokens else None
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            lifetime=lifetime,
        )
        payload: dict[str, object] = {"access_token": access.value}
        if self.expiring_tokens:
            refresh = self.issue_token(
                "refresh",
                client_id=client.client_id,
                user=user,
                scope=scope,
                grant_id=grant_id,
                lifetime=self.refresh_token_lifetime,
            )
            payload["expires_in"] = self.access_token_lifetime
            payload["refresh_token"] = refresh.value
            payload["refresh_token_expires_in"] = self.refresh_token_lifetime
        payload["scope"] = ",".join(scope)
        payload["token_type"] = "bearer"
        self._enforce_token_limit(client.client_id, user, scope)
        return self.respond(request, payload)

    def _enforce_token_limit(
        self, client_id: str, user: str, scope: tuple[str, ...]
    ) -> None:
        """Revoke the oldest grants of a user and scope beyond max_tokens_per_scope."""
        first_issued: dict[str, float] = {}
        for record in self.tokens.values():
            if (
                record.kind == "access"
                and record.client_id == client_id
                and record.user == user
                and sorted(record.scope) == sorted(scope)
                and self.is_live(record)
            ):
                previous = first_issued.get(record.grant_id, record.issued_at)
                first_issued[record.grant_id] = min(previous, record.issued_at)
        oldest_first = sorted(first_issued, key=first_issued.__getitem__)
        excess = len(oldest_first) - self.max_tokens_per_scope
        for grant_id in oldest_first[: max(excess, 0)]:
            self.revoke_grant(grant_id)

    def _refresh(
        self,
        request: RecordedRequest,
        client: ClientRegistration,
        params: dict[str, str],
    ) -> Response:
        record = self.live_token(params.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.error_response(
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
                request=request,
            )
        record.used = True
        return self._issue(
            request,
            client,
            record.user or self.current_user,
            record.scope,
            record.grant_id,
        )

    # ------------------------------------------------------------- device flow

    def handle_device_code(self, request: RecordedRequest) -> Response:
        params = self._params(request)
        client = self.clients.get(params.get("client_id", ""))
        # NOTE: GitHub does not document its response to an unknown client_id
        # here, so the fake returns 404 like its other unknown-app pages.
        if client is None:
            return json_response(404, {"error": "Not Found"})
        if not self.device_flow_enabled:
            return self.error_response(
                "device_flow_disabled",
                "Device Flow must be explicitly enabled for this App",
                request=request,
            )

        device = self.start_device_authorization(
            client.client_id,
            split_scope(params.get("scope"), " ,"),
            user_code=generate_user_code(2, 4, USER_CODE_ALPHABET),
            lifetime=self.device_code_lifetime,
            interval=self.device_interval,
            params=params,
        )
        payload = {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": self.verification_uri,
            "expires_in": self.device_code_lifetime,
            "interval": device.interval,
        }
        return self.respond(request, payload)

    def _poll_device(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> Response:
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return self.error_response(
                "incorrect_client_credentials",
                "The client_id is not valid.",
                request=request,
            )
        if not self.device_flow_enabled:
            return self.error_response(
                "device_flow_disabled",
                "Device Flow must be explicitly enabled for this App",
                request=request,
            )
        outcome, device = self.poll_device(
            params.get("device_code"), client.client_id, enforce_interval=True
        )
        if outcome == "invalid" or device is None:
            return self.error_response(
                "incorrect_device_code",
                "The device_code provided is not valid.",
                request=request,
            )
        if outcome == "expired":
            return self.error_response(
                "expired_token", "The device_code has expired.", request=request
            )
        if outcome == "slow_down":
            payload = {
                "error": "slow_down",
                "error_description": "Too many requests have been made in the same "
                "timeframe.",
                "error_uri": DOCS
                + "/authorizing-oauth-apps#error-codes-for-the-device-flow",
                "interval": device.interval,
            }
            return self.respond(request, payload)
        if outcome == "denied":
            return self.error_response(
                "access_denied",
                "The authorization request was denied.",
                request=request,
            )
        if outcome == "pending":
            return self.error_response(
                "authorization_pending",
                "The authorization request is still pending.",
                request=request,
            )
        user = device.extra.get("user", self.current_user)
        return self._issue(request, client, user, device.scope, self.new_grant_id())

    # -------------------------------------------------------------- revocation

    def handle_revoke(self, request: RecordedRequest) -> Response:
        not_found = json_response(
            404,
            {
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/apps/oauth-applications",
            },
        )
        basic = request.basic_auth
        client = self.clients.get(request.path_args.get("client_id", ""))
        # NOTE: GitHub documents 204 and 422 for this endpoint. For wrong app
        # credentials or an unknown token the fake returns 404, as GitHub's API
        # does for resources that the caller may not see.
        if (
            client is None
            or basic is None
            or basic[0] != client.client_id
            or not secrets.compare_digest(basic[1], client.client_secret)
        ):
            return not_found

        token = request.json_params.get("access_token")
        if not isinstance(token, str) or not token:
            return json_response(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"field": "access_token", "code": "missing_field"}],
                },
            )

        record = self.live_token(token, "access")
        if record is None or record.client_id != client.client_id:
            return not_found

        self.revoke_grant(record.grant_id)
        self.revoked_tokens.append(token)
        return Response(204)
