"""Fake Microsoft identity platform (v2.0) server with the tenant in the path.

Routes: ``/{tenant}/oauth2/v2.0/authorize``, ``/{tenant}/oauth2/v2.0/token`` and
``/{tenant}/oauth2/v2.0/devicecode``. Behaviour follows Microsoft Learn's pages
v2-oauth2-auth-code-flow, v2-oauth2-device-code, v2-oauth2-client-creds-grant-flow,
refresh-tokens, reply-url and reference-error-codes:

- A public client (mobile and desktop registration) must not send a client
  secret (AADSTS700025). A confidential one must (AADSTS7000218). The secret may
  be a form field or HTTP Basic.
- A refresh token comes only when ``offline_access`` is in the scope. Each
  refresh returns a new refresh token. The old one stays valid unless
  ``revoke_used_refresh_tokens`` is set.
- One resource per request: Graph scopes cannot be mixed with another API's
  scopes (AADSTS28000).
- ``client_credentials`` needs a specific tenant and a ``{resource}/.default``
  scope, and never returns a refresh token.
- For loopback redirect URIs the port is ignored in matching. ``[::1]`` is not
  supported.
- Errors are JSON with ``error``, an ``error_description`` that starts with the
  AADSTS code, ``error_codes``, ``timestamp``, ``trace_id`` and
  ``correlation_id``.
- There is no revocation endpoint.
"""

from __future__ import annotations

import datetime
import secrets
import urllib.parse
import uuid
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

GRAPH_RESOURCE = "https://graph.microsoft.com"
# OpenID Connect scopes, which belong to no resource.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
MULTI_TENANT_NAMES = frozenset({"common", "organizations", "consumers"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# AADSTS code sent with an error injected by fail_next(error=...), by error.
# 50000 is Microsoft's generic token issuance error.
INJECTED_ERROR_CODES = {
    "temporarily_unavailable": 90055,
    "invalid_grant": 70000,
    "invalid_client": 7000215,
    "invalid_scope": 70011,
}


def scope_resource(scope: str) -> tuple[str, str]:
    """Split a scope into (resource, permission). A bare name belongs to Graph."""
    if "://" in scope:
        resource, _, permission = scope.rpartition("/")
        return resource.rstrip("/").lower(), permission
    return GRAPH_RESOURCE, scope


class MicrosoftServer(ProviderServer):
    """Fake of login.microsoftonline.com for one app registration.

    Knobs (constructor arguments and attributes of the same name):

    - ``public_client`` (default True): a public client must not send a secret, a
      confidential one must send it.
    - ``revoke_used_refresh_tokens`` (default False): whether a refresh token dies
      when it is redeemed. Microsoft keeps it valid and expects the client to
      switch to the new one.
    - ``device_slow_down`` (default False): respond ``slow_down`` to device polls
      sooner than the interval.
    - ``tenant_id`` and ``tenant_domain``: the specific tenant accepted besides
      common, organizations and consumers.

    ``tenants_seen`` lists the tenant path segment of every request in order.
    """

    service = "microsoft"
    default_redirect_uris: tuple[str, ...] = (
        "http://localhost",
        "http://127.0.0.1/callback",
    )
    # Microsoft issues access tokens for 60 to 90 minutes. Its examples show 3599.
    access_token_lifetime = 3599
    device_code_lifetime = 900
    device_interval = 5
    access_token_prefix = "eyJ0eXAiOiJKV1Qi."
    refresh_token_prefix = "0.A"
    default_tenant = "common"

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        public_client: bool = True,
        revoke_used_refresh_tokens: bool = False,
        device_slow_down: bool = False,
        access_token_lifetime: int | None = None,
    ) -> None:
        super().__init__(
            redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime
        )
        self.client.public = public_client
        self.revoke_used_refresh_tokens = revoke_used_refresh_tokens
        # NOTE: Microsoft's device-code page lists authorization_pending,
        # authorization_declined, bad_verification_code and expired_token but not
        # slow_down, so slow_down is off unless a test turns it on.
        self.device_slow_down = device_slow_down
        self.tenant_id = str(uuid.uuid4())
        self.tenant_domain = "contoso.onmicrosoft.com"
        self.tenants_seen: list[str] = []

    @property
    def public_client(self) -> bool:
        return self.client.public

    @public_client.setter
    def public_client(self, value: bool) -> None:
        self.client.public = value

    def generate_client_id(self) -> str:
        return str(uuid.uuid4())

    def register_routes(self) -> None:
        prefix = r"/(?P<tenant>[^/]+)/oauth2/v2\.0"
        self.add_route("GET", prefix + "/authorize", "authorize", self.handle_authorize)
        self.add_route("POST", prefix + "/token", "token", self.handle_token)
        self.add_route(
            "POST", prefix + "/devicecode", "device", self.handle_device_code
        )

    def authority(self, tenant: str | None = None) -> str:
        return self.url("/" + (tenant or self.default_tenant))

    def authorize_url_for(self, tenant: str | None = None) -> str:
        return self.authority(tenant) + "/oauth2/v2.0/authorize"

    def token_url_for(self, tenant: str | None = None) -> str:
        return self.authority(tenant) + "/oauth2/v2.0/token"

    def device_authorization_url_for(self, tenant: str | None = None) -> str:
        return self.authority(tenant) + "/oauth2/v2.0/devicecode"

    @property
    def authorize_url(self) -> str:
        return self.authorize_url_for()

    @property
    def token_url(self) -> str:
        return self.token_url_for()

    @property
    def device_authorization_url(self) -> str:
        return self.device_authorization_url_for()

    # Microsoft has no revocation endpoint.
    revoke_url = None

    @property
    def verification_uri(self) -> str:
        return self.url("/devicelogin")

    # ------------------------------------------------------------ error shapes

    def aad_error(
        self, error: str, code: int, message: str, *, status: int = 400
    ) -> Response:
        """Build an error in Microsoft's token-endpoint shape with an AADSTS code."""
        trace_id = str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%SZ"
        )
        description = (
            f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        )
        return json_response(
            status,
            {
                "error": error,
                "error_description": description,
                "error_codes": [code],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
            },
        )

    def error_response(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        request: RecordedRequest | None = None,
    ) -> Response:
        code = INJECTED_ERROR_CODES.get(error, 50000)
        return self.aad_error(error, code, description, status=status or 400)

    def rate_limited_response(self, retry_after: float | None) -> Response:
        # Microsoft documents the 429 status and Retry-After header of the token
        # endpoint. NOTE: the error and AADSTS code in the body are the fake's choice.
        return self.aad_error(
            "temporarily_unavailable",
            90055,
            "The number of requests has exceeded the throttling threshold.",
            status=429,
        )

    # ----------------------------------------------------------------- helpers

    def _check_tenant(self, request: RecordedRequest) -> str | None:
        """Record the tenant of a request and return it, or None when unknown."""
        tenant = request.path_args.get("tenant", "")
        self.tenants_seen.append(tenant)
        known = MULTI_TENANT_NAMES | {self.tenant_id, self.tenant_domain}
        return tenant if tenant.lower() in known else None

    def _unknown_tenant(self, request: RecordedRequest) -> Response:
        tenant = request.path_args.get("tenant", "")
        return self.aad_error("invalid_request", 90002, f"Tenant '{tenant}' not found.")

    def redirect_uri_registered(self, client: ClientRegistration, uri: str) -> bool:
        """Match uri against the registration, ignoring the port on loopback hosts."""
        requested = urllib.parse.urlsplit(uri)
        if (requested.hostname or "") == "::1":
            return False
        for registered_uri in client.redirect_uris:
            if registered_uri == uri:
                return True
            registered = urllib.parse.urlsplit(registered_uri)
            if (
                requested.scheme == registered.scheme == "http"
                and (requested.hostname or "") in LOOPBACK_NAMES
                and requested.hostname == registered.hostname
                and (requested.path or "/") == (registered.path or "/")
                and requested.query == registered.query
            ):
                return True
        return False

    def scope_problem(self, scope: tuple[str, ...]) -> tuple[int, str] | None:
        """Return (AADSTS code, message) when the scopes break Microsoft's rules."""
        resource_scopes = [item for item in scope if item not in OIDC_SCOPES]
        resources = {scope_resource(item)[0] for item in resource_scopes}
        if len(resources) > 1:
            return (
                28000,
                "Provided value for the input parameter scope is not valid because "
                f"it contains more than one resource. Scope {' '.join(scope)} is "
                "not valid.",
            )
        has_default = any(
            scope_resource(item)[1] == ".default" for item in resource_scopes
        )
        if has_default and len(resource_scopes) > 1:
            return (
                70011,
                "The provided value for the input parameter 'scope' is not valid. "
                "The .default scope cannot be combined with other scopes.",
            )
        return None

    def _authenticate(
        self, request: RecordedRequest, params: dict[str, str], tenant: str
    ) -> ClientRegistration | Response:
        basic = request.basic_auth
        client_id = basic[0] if basic else params.get("client_id")
        secret = basic[1] if basic else params.get("client_secret")
        if not client_id:
            return self.aad_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        client = self.clients.get(client_id)
        if client is None:
            return self.aad_error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        if client.public:
            if secret:
                return self.aad_error(
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor "
                    "'client_secret' should be presented.",
                    status=401,
                )
            return client
        if not secret:
            return self.aad_error(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
                status=401,
            )
        if not secrets.compare_digest(secret, client.client_secret):
            return self.aad_error(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Send the secret value, not the "
                f"secret ID, of a secret added to app '{client_id}'.",
                status=401,
            )
        return client

    # --------------------------------------------------------------- authorize

    def handle_authorize(self, request: RecordedRequest) -> Response:
        tenant = self._check_tenant(request)
        if tenant is None:
            name = request.path_args.get("tenant", "")
            return error_page(
                400, "invalid_tenant", f"AADSTS90002: Tenant '{name}' not found."
            )
        params = request.query_params
        client_id = params.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            return error_page(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not "
                f"found in the directory '{tenant}'.",
            )

        redirect_uri = params.get("redirect_uri")
        # NOTE: Microsoft can fall back to a registered URI when redirect_uri is
        # omitted. The fake requires it, as the auth-code flow page lists it.
        if not redirect_uri or not self.redirect_uri_registered(client, redirect_uri):
            return error_page(
                400,
                "invalid_request",
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the "
                "request does not match the redirect URIs configured for the "
                f"application '{client_id}'.",
            )

        state = params.get("state")

        def redirect_error(error: str, description: str) -> Response:
            location = add_query_params(
                redirect_uri,
                {"error": error, "error_description": description, "state": state},
            )
            return redirect_response(location)

        if params.get("response_type") != "code":
            return redirect_error(
                "unsupported_response_type",
                "AADSTS70005: The response_type is not supported. Use code.",
            )

        scope = split_scope(params.get("scope"))
        if not scope:
            return redirect_error(
                "invalid_request",
                "AADSTS900144: The request body must contain the following "
                "parameter: 'scope'.",
            )

        problem = self.scope_problem(scope)
        if problem is not None:
            return redirect_error("invalid_scope", f"AADSTS{problem[0]}: {problem[1]}")

        method = None
        if params.get("code_challenge"):
            method = params.get("code_challenge_method") or "plain"
            if method not in ("plain", "S256"):
                return redirect_error(
                    "invalid_request",
                    f"Invalid code_challenge_method {method}. Use S256 or plain.",
                )

        if self.take_denial():
            location = add_query_params(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_subcode": "cancel",
                    "error_description": "AADSTS65004: User declined to consent.",
                    "state": state,
                },
            )
            return redirect_response(location)

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=redirect_uri,
            params=params,
            scope=scope,
            code_challenge_method=method,
            prefix="0.A",
            extra={"tenant": tenant},
        )
        return redirect_response(
            add_query_params(redirect_uri, {"code": code.value, "state": state})
        )

    # ------------------------------------------------------------------- token

    def handle_token(self, request: RecordedRequest) -> Response:
        tenant = self._check_tenant(request)
        if tenant is None:
            return self._unknown_tenant(request)
        # Microsoft reads only form fields, so a JSON body has no grant_type.
        params = request.form_params
        grant_type = params.get("grant_type")
        if not grant_type:
            return self.aad_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        client = self._authenticate(request, params, tenant)
        if isinstance(client, Response):
            return client
        if grant_type == "authorization_code":
            return self._exchange_code(client, params, tenant)
        if grant_type == "refresh_token":
            return self._refresh(client, params, tenant)
        if grant_type == "client_credentials":
            return self._client_credentials(client, params, tenant)
        if grant_type == DEVICE_CODE_GRANT_TYPE:
            return self._poll_device(client, params, tenant)
        return self.aad_error(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    def _token_payload(
        self,
        client: ClientRegistration,
        user: str | None,
        scope: tuple[str, ...],
        tenant: str,
        grant_id: str,
        *,
        with_refresh: bool,
    ) -> dict[str, object]:
        extra = {"tenant": tenant}
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=user,
            scope=scope,
            grant_id=grant_id,
            lifetime=self.access_token_lifetime,
            extra=extra,
        )
        payload: dict[str, object] = {
            "token_type": "Bearer",
            "scope": " ".join(item for item in scope if item != "offline_access"),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access.value,
        }
        if with_refresh:
            refresh = self.issue_token(
                "refresh",
                client_id=client.client_id,
                user=user,
                scope=scope,
                grant_id=grant_id,
                lifetime=None,
                extra=extra,
            )
            payload["refresh_token"] = refresh.value
        return payload

    def _exchange_code(
        self, client: ClientRegistration, params: dict[str, str], tenant: str
    ) -> Response:
        value = params.get("code", "")
        existing = self.codes.get(value)
        code = self.redeem_code(value, client.client_id)
        if code is None:
            if existing is not None and existing.used:
                return self.aad_error(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed. Request a new "
                    "code or use a refresh token.",
                )
            return self.aad_error(
                "invalid_grant",
                70000,
                "The provided value for the 'code' parameter is not valid.",
            )
        if params.get("redirect_uri") != code.redirect_uri:
            return self.aad_error(
                "invalid_grant",
                70000,
                "The redirect_uri does not match the one used to obtain the "
                "authorization code.",
            )
        if self.check_pkce(code, params.get("code_verifier")) is not None:
            return self.aad_error(
                "invalid_grant",
                501481,
                "The code_verifier does not match the code_challenge supplied in "
                "the authorization request.",
            )
        scope = code.scope
        requested = split_scope(params.get("scope"))
        if requested:
            problem = self.scope_problem(requested)
            if problem is not None:
                return self.aad_error("invalid_scope", problem[0], problem[1])
        payload = self._token_payload(
            client,
            code.user,
            scope,
            tenant,
            self.new_grant_id(),
            with_refresh="offline_access" in scope,
        )
        return json_response(200, payload)

    def _refresh(
        self, client: ClientRegistration, params: dict[str, str], tenant: str
    ) -> Response:
        record = self.live_token(params.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.aad_error(
                "invalid_grant",
                70000,
                "The provided refresh token is not valid. It may have expired or "
                "been revoked.",
            )

        scope = split_scope(params.get("scope")) or record.scope

        problem = self.scope_problem(scope)
        if problem is not None:
            return self.aad_error("invalid_scope", problem[0], problem[1])
        if self.revoke_used_refresh_tokens:
            record.used = True
        payload = self._token_payload(
            client, record.user, scope, tenant, record.grant_id, with_refresh=True
        )
        return json_response(200, payload)

    def _client_credentials(
        self, client: ClientRegistration, params: dict[str, str], tenant: str
    ) -> Response:
        if tenant.lower() in MULTI_TENANT_NAMES:
            # NOTE: the AADSTS code Microsoft sends here is not on its
            # client-credentials page. The fake uses 50059, "no tenant-identifying
            # information found".
            return self.aad_error(
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or "
                f"implied by any provided credentials. Use a tenant ID instead of "
                f"'{tenant}'.",
            )
        if client.public:
            return self.aad_error(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
                status=401,
            )

        scope = split_scope(params.get("scope"))
        if len(scope) != 1 or scope_resource(scope[0])[1] != ".default":
            return self.aad_error(
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scope)} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed "
                "to the resource identifier.",
            )
        payload = self._token_payload(
            client, None, scope, tenant, self.new_grant_id(), with_refresh=False
        )
        del payload["scope"]
        return json_response(200, payload)

    # ------------------------------------------------------------- device flow

    def handle_device_code(self, request: RecordedRequest) -> Response:
        tenant = self._check_tenant(request)
        if tenant is None:
            return self._unknown_tenant(request)
        params = request.form_params
        client_id = params.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            return self.aad_error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )

        scope = split_scope(params.get("scope"))
        if not scope:
            return self.aad_error(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )

        problem = self.scope_problem(scope)
        if problem is not None:
            return self.aad_error("invalid_scope", problem[0], problem[1])

        device = self.start_device_authorization(
            client.client_id,
            scope,
            user_code=generate_user_code(1, 9, USER_CODE_ALPHABET),
            lifetime=self.device_code_lifetime,
            interval=self.device_interval,
            params=params,
        )
        device.extra["tenant"] = tenant
        return json_response(
            200,
            {
                "user_code": device.user_code,
                "device_code": device.device_code,
                "verification_uri": self.verification_uri,
                "expires_in": self.device_code_lifetime,
                "interval": device.interval,
                "message": f"Open {self.verification_uri} in a web browser and enter "
                f"the code {device.user_code} to sign in.",
            },
        )

    def _poll_device(
        self, client: ClientRegistration, params: dict[str, str], tenant: str
    ) -> Response:
        outcome, device = self.poll_device(
            params.get("device_code"),
            client.client_id,
            enforce_interval=self.device_slow_down,
        )
        # NOTE: Microsoft documents the error strings of device polling. The AADSTS
        # codes here, other than 70016 for a pending sign-in, are the fake's choice.
        if outcome == "invalid" or device is None:
            return self.aad_error(
                "bad_verification_code", 70000, "The device_code was not recognized."
            )
        if outcome == "expired":
            return self.aad_error(
                "expired_token", 70000, "The device_code has expired. Start again."
            )
        if outcome == "slow_down":
            return self.aad_error("slow_down", 70000, "Polling too frequently.")
        if outcome == "denied":
            return self.aad_error(
                "authorization_declined", 70000, "The end user denied the request."
            )
        if outcome == "pending":
            return self.aad_error(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. "
                "Continue polling.",
            )
        user = device.extra.get("user", self.current_user)
        payload = self._token_payload(
            client,
            user,
            device.scope,
            tenant,
            self.new_grant_id(),
            with_refresh="offline_access" in device.scope,
        )
        return json_response(200, payload)
