"""Fake Notion public-integration OAuth server.

Routes: ``/v1/oauth/authorize``, ``/v1/oauth/token``, ``/v1/oauth/revoke`` and
``/v1/oauth/introspect``. Behaviour follows Notion's API reference
(developers.notion.com/reference/create-a-token, refresh-a-token, revoke-token,
introspect-token, request-limits, status-codes) and its authorization guide:

- The authorize URL needs ``owner=user``.
- Every token, revoke and introspect call authenticates the client with HTTP
  Basic and sends a JSON body. A form body is rejected.
- The token response has no ``expires_in``. It carries a refresh token that
  rotates, and ``bot_id``, ``workspace_id``, ``workspace_name``, ``owner`` and
  related fields.
- There is no PKCE: code_challenge parameters are ignored. There is no device
  flow and no out-of-band redirect.
- ``redirect_uri`` at the token endpoint is required when the authorize URL had
  one or the integration has several, and not allowed when the integration has
  one and the authorize URL had none.
- A rate-limited request gets 429 with Retry-After in seconds.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from .base import (
    ClientRegistration,
    ProviderServer,
    RecordedRequest,
    Response,
    TokenRecord,
    add_query_params,
    error_page,
    json_response,
    redirect_response,
)

ERROR_STYLES = ("api", "oauth")
# Notion API error code for each OAuth error, for error_style "api".
API_ERROR_CODES = {"invalid_client": "unauthorized"}


class NotionServer(ProviderServer):
    """Fake of api.notion.com's OAuth endpoints for one public integration.

    Knobs (constructor arguments and attributes of the same name):

    - ``error_style``: ``"api"`` (default) sends errors in the Notion API shape
      ``{"object": "error", "status": 400, "code": "...", "message": "..."}``,
      which the create-a-token reference shows. ``"oauth"`` sends
      ``{"error": "...", "error_description": "..."}``.
    - ``require_version_header`` (default False): reject token requests without a
      ``Notion-Version`` header.

    ``workspace_id``, ``workspace_name`` and ``bot_id`` are sent in token
    responses.
    """

    service = "notion"
    access_token_prefix = "ntn_"
    refresh_token_prefix = "nrt_"

    def __init__(
        self,
        *,
        redirect_uris: Iterable[str] | None = None,
        error_style: str = "api",
        require_version_header: bool = False,
    ) -> None:
        if error_style not in ERROR_STYLES:
            raise ValueError(
                f"invalid error_style {error_style!r}: expected one of {ERROR_STYLES}"
            )
        super().__init__(redirect_uris=redirect_uris)
        # NOTE: Notion's reference shows the API error shape for the token endpoint,
        # but integrations report OAuth-style bodies for some token errors. The
        # error_style knob lets tests cover both.
        self.error_style = error_style
        # NOTE: Notion's create-a-token reference lists Notion-Version as required,
        # but its authorization guide sends none. The fake accepts both unless
        # this knob is set.
        self.require_version_header = require_version_header
        self.workspace_id = str(uuid.uuid4())
        self.workspace_name = "Fake Workspace"
        self.bot_id = str(uuid.uuid4())
        self.user_ids: dict[str, str] = {}

    def generate_client_id(self) -> str:
        return str(uuid.uuid4())

    def register_routes(self) -> None:
        self.add_route("GET", "/v1/oauth/authorize", "authorize", self.handle_authorize)
        self.add_route("POST", "/v1/oauth/token", "token", self.handle_token)
        self.add_route("POST", "/v1/oauth/revoke", "revoke", self.handle_revoke)
        self.add_route(
            "POST", "/v1/oauth/introspect", "introspect", self.handle_introspect
        )

    @property
    def authorize_url(self) -> str:
        return self.url("/v1/oauth/authorize")

    @property
    def token_url(self) -> str:
        return self.url("/v1/oauth/token")

    @property
    def revoke_url(self) -> str:
        return self.url("/v1/oauth/revoke")

    @property
    def introspect_url(self) -> str:
        return self.url("/v1/oauth/introspect")

    # Notion has no device flow.
    device_authorization_url = None

    # ------------------------------------------------------------ error shapes

    def error_response(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        request: RecordedRequest | None = None,
    ) -> Response:
        status = status if status is not None else 400
        if self.error_style == "oauth":
            return json_response(
                status, {"error": error, "error_description": description}
            )
        return json_response(
            status,
            {
                "object": "error",
                "status": status,
                "code": API_ERROR_CODES.get(error, error),
                "message": description,
                "request_id": str(uuid.uuid4()),
            },
        )

    def rate_limited_response(self, retry_after: float | None) -> Response:
        return json_response(
            429,
            {
                "object": "error",
                "status": 429,
                "code": "rate_limited",
                "message": "This integration is rate limited. Retry after the "
                "number of seconds in the Retry-After header.",
                "request_id": str(uuid.uuid4()),
            },
        )

    # --------------------------------------------------------------- authorize

    def handle_authorize(self, request: RecordedRequest) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return error_page(400, "invalid_request", "Invalid client_id.")
        if params.get("response_type") != "code":
            return error_page(400, "invalid_request", "response_type must be code.")
        if params.get("owner") != "user":
            return error_page(400, "invalid_request", "owner must be user.")

        redirect_uri = params.get("redirect_uri")
        if redirect_uri is not None:
            if redirect_uri not in client.redirect_uris:
                return error_page(
                    400, "invalid_request", f"Invalid redirect_uri {redirect_uri!r}."
                )
            target = redirect_uri
        elif len(client.redirect_uris) == 1:
            target = client.redirect_uris[0]
        else:
            return error_page(
                400,
                "invalid_request",
                "redirect_uri is required when the integration has several "
                "redirect URIs.",
            )

        state = params.get("state")
        if self.take_denial():
            return redirect_response(
                add_query_params(target, {"error": "access_denied", "state": state})
            )

        code = self.issue_code(
            client,
            redirect_uri=redirect_uri,
            effective_redirect_uri=target,
            params=params,
            scope=(),
        )
        # Notion has no PKCE, so a code_challenge in the request is ignored.
        code.code_challenge = None
        return redirect_response(
            add_query_params(target, {"code": code.value, "state": state})
        )

    # ------------------------------------------------------- shared validation

    def _validate(
        self, request: RecordedRequest
    ) -> tuple[ClientRegistration, dict[str, Any]] | Response:
        """Check Basic client auth and the JSON body, and return client and body."""
        basic = request.basic_auth
        if basic is None:
            return self.error_response(
                "invalid_client",
                "Client authentication failed: send the client ID and secret with "
                "HTTP Basic authentication.",
                status=401,
            )
        client = self.clients.get(basic[0])
        if client is None or not secrets.compare_digest(basic[1], client.client_secret):
            return self.error_response(
                "invalid_client", "Client authentication failed.", status=401
            )
        if request.content_type != "application/json":
            return self.error_response(
                "invalid_request",
                f"The request body must be JSON with Content-Type application/json, "
                f"not {request.content_type or 'none'}.",
            )
        if not isinstance(request.json, dict):
            return self.error_response("invalid_json", "Error parsing JSON body.")
        if self.require_version_header and not request.header("notion-version"):
            return self.error_response(
                "missing_version",
                "Notion-Version header failed validation: it is missing.",
            )
        return client, request.json

    # ------------------------------------------------------------------- token

    def handle_token(self, request: RecordedRequest) -> Response:
        validated = self._validate(request)
        if isinstance(validated, Response):
            return validated
        client, body = validated
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client, body)
        if grant_type == "refresh_token":
            return self._refresh(client, body)
        return self.error_response(
            "invalid_request",
            "body failed validation: body.grant_type should be authorization_code "
            f"or refresh_token, instead was {grant_type!r}.",
        )

    def _exchange_code(
        self, client: ClientRegistration, body: dict[str, Any]
    ) -> Response:
        code = self.redeem_code(body.get("code"), client.client_id)
        if code is None:
            return self.error_response("invalid_grant", "Invalid code.")
        sent = body.get("redirect_uri")
        required = code.redirect_uri is not None or len(client.redirect_uris) > 1
        if required and sent != code.effective_redirect_uri:
            return self.error_response(
                "invalid_grant", "redirect_uri is missing or does not match."
            )
        if not required and sent is not None:
            return self.error_response(
                "invalid_request",
                "redirect_uri is not allowed: the integration has one redirect URI "
                "and the authorization URL did not include one.",
            )
        return self._issue(client, code.user, self.new_grant_id())

    def _issue(self, client: ClientRegistration, user: str, grant_id: str) -> Response:
        access = self.issue_token(
            "access",
            client_id=client.client_id,
            user=user,
            scope=(),
            grant_id=grant_id,
            lifetime=None,
        )
        refresh = self.issue_token(
            "refresh",
            client_id=client.client_id,
            user=user,
            scope=(),
            grant_id=grant_id,
            lifetime=None,
        )
        if user not in self.user_ids:
            self.user_ids[user] = str(uuid.uuid4())
        return json_response(
            200,
            {
                "access_token": access.value,
                "token_type": "bearer",
                "refresh_token": refresh.value,
                "bot_id": self.bot_id,
                "workspace_icon": None,
                "workspace_name": self.workspace_name,
                "workspace_id": self.workspace_id,
                "owner": {
                    "type": "user",
                    "user": {"object": "user", "id": self.user_ids[user]},
                },
                "duplicated_template_id": None,
                "request_id": str(uuid.uuid4()),
            },
        )

    def _refresh(self, client: ClientRegistration, body: dict[str, Any]) -> Response:
        record = self.live_token(body.get("refresh_token"), "refresh")
        if record is None or record.client_id != client.client_id:
            return self.error_response("invalid_grant", "Invalid refresh token.")
        # Refresh tokens rotate: the one just used stops working.
        record.used = True
        return self._issue(client, record.user or self.current_user, record.grant_id)

    # ------------------------------------------------- revocation, introspection

    def _token_from_body(
        self, client: ClientRegistration, body: dict[str, Any]
    ) -> TokenRecord | None:
        record = self.tokens.get(body.get("token") or "")
        if record is None or record.client_id != client.client_id:
            return None
        return record

    def handle_revoke(self, request: RecordedRequest) -> Response:
        validated = self._validate(request)
        if isinstance(validated, Response):
            return validated
        client, body = validated
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return self.error_response(
                "invalid_request",
                "body failed validation: body.token should be defined.",
            )
        record = self._token_from_body(client, body)
        if record is None or not self.is_live(record):
            return self.error_response("invalid_grant", "Invalid token.")

        self.revoke_grant(record.grant_id)
        self.revoked_tokens.append(token)
        return json_response(200, {"request_id": str(uuid.uuid4())})

    def handle_introspect(self, request: RecordedRequest) -> Response:
        validated = self._validate(request)
        if isinstance(validated, Response):
            return validated
        client, body = validated
        record = self._token_from_body(client, body)
        if record is None or not self.is_live(record):
            return json_response(
                200, {"active": False, "request_id": str(uuid.uuid4())}
            )
        return json_response(
            200,
            {
                "active": True,
                "scope": "read_content update_content insert_content",
                "iat": int(record.issued_at),
                "request_id": str(uuid.uuid4()),
            },
        )
