"""The documented names, fields, defaults and known configurations."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import video_processor.auth as auth
from video_processor.auth import (
    KNOWN_CONFIGS,
    AuthConfig,
    AuthResult,
    OAuthManager,
    get_auth_config,
    get_auth_manager,
)
from video_processor.auth.errors import ConfigurationError

DOCUMENTED_CONFIG_FIELDS = [
    ("service", None),
    ("oauth_authorize_url", None),
    ("oauth_token_url", None),
    ("client_id", None),
    ("client_secret", None),
    ("client_id_env", None),
    ("client_secret_env", None),
    ("api_key_env", None),
    ("scopes", []),
    ("redirect_uri", "urn:ietf:wg:oauth:2.0:oob"),
    ("account_id", None),
    ("account_id_env", None),
    ("token_path", None),
]

DOCUMENTED_RESULT_FIELDS = [
    "success",
    "access_token",
    "method",
    "expires_at",
    "refresh_token",
    "error",
]


def test_all_lists_the_documented_names_sorted() -> None:
    assert auth.__all__ == [
        "KNOWN_CONFIGS",
        "AuthConfig",
        "AuthResult",
        "OAuthManager",
        "get_auth_config",
        "get_auth_manager",
    ]


def test_auth_config_documented_fields_come_first_in_order() -> None:
    fields = dataclasses.fields(AuthConfig)
    names = [field.name for field in fields][: len(DOCUMENTED_CONFIG_FIELDS)]
    assert names == [name for name, _ in DOCUMENTED_CONFIG_FIELDS]


def test_auth_config_documented_defaults() -> None:
    config = AuthConfig(service="custom")
    for name, default in DOCUMENTED_CONFIG_FIELDS[1:]:
        assert getattr(config, name) == default, name


def test_auth_config_extensions_have_defaults() -> None:
    extra = dataclasses.fields(AuthConfig)[len(DOCUMENTED_CONFIG_FIELDS) :]
    for field in extra:
        has_default = field.default is not dataclasses.MISSING
        has_factory = field.default_factory is not dataclasses.MISSING
        assert has_default or has_factory, field.name


def test_auth_result_fields_in_documented_order() -> None:
    names = [field.name for field in dataclasses.fields(AuthResult)]
    assert names == DOCUMENTED_RESULT_FIELDS
    result = AuthResult(success=False)
    assert (result.access_token, result.method, result.expires_at) == (None, None, None)
    assert (result.refresh_token, result.error) == (None, None)


def test_known_configs_have_documented_variables() -> None:
    expected = {
        "zoom": ("ZOOM_CLIENT_ID", None),
        "notion": ("NOTION_CLIENT_ID", "NOTION_API_KEY"),
        "dropbox": ("DROPBOX_APP_KEY", "DROPBOX_ACCESS_TOKEN"),
        "github": ("GITHUB_CLIENT_ID", "GITHUB_TOKEN"),
        "google": ("GOOGLE_CLIENT_ID", "GOOGLE_API_KEY"),
        "microsoft": ("MICROSOFT_CLIENT_ID", None),
    }
    assert list(KNOWN_CONFIGS) == list(expected)
    for service, (client_id_env, api_key_env) in expected.items():
        config = KNOWN_CONFIGS[service]
        assert config.service == service
        assert config.client_id_env == client_id_env
        assert config.api_key_env == api_key_env
        assert config.supports_oauth


def test_known_configs_have_documented_endpoints() -> None:
    hosts = {
        "zoom": "https://zoom.us/oauth/",
        "notion": "https://api.notion.com/v1/oauth/",
        "dropbox": "https://www.dropbox.com/oauth2/",
        "github": "https://github.com/login/oauth/",
        "google": "https://accounts.google.com/o/oauth2/",
        "microsoft": "https://login.microsoftonline.com/",
    }
    for service, prefix in hosts.items():
        assert KNOWN_CONFIGS[service].oauth_authorize_url.startswith(prefix)
    assert KNOWN_CONFIGS["zoom"].account_id_env == "ZOOM_ACCOUNT_ID"
    assert KNOWN_CONFIGS["github"].scopes == ["repo", "read:org"]
    assert "/oauth2/" in KNOWN_CONFIGS["microsoft"].oauth_token_url


def test_get_auth_config_returns_independent_copy() -> None:
    config = get_auth_config("github")
    assert config is not None
    assert config is not KNOWN_CONFIGS["github"]
    config.scopes.append("gist")
    assert KNOWN_CONFIGS["github"].scopes == ["repo", "read:org"]


def test_get_auth_config_unknown_service_returns_none() -> None:
    assert get_auth_config("nonexistent") is None
    assert get_auth_manager("nonexistent") is None


def test_get_auth_manager_wraps_the_config() -> None:
    manager = get_auth_manager("zoom")
    assert isinstance(manager, OAuthManager)
    assert manager.config.service == "zoom"


def test_resolved_values_prefer_direct_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_ID", "from-env-id")
    monkeypatch.setenv("X_SECRET", "from-env-secret")
    monkeypatch.setenv("X_ACCOUNT", "from-env-account")
    monkeypatch.setenv("X_KEY", "from-env-key")
    config = AuthConfig(
        service="x",
        client_id_env="X_ID",
        client_secret_env="X_SECRET",
        account_id_env="X_ACCOUNT",
        api_key_env="X_KEY",
    )
    assert config.resolved_client_id == "from-env-id"
    assert config.resolved_client_secret == "from-env-secret"
    assert config.resolved_account_id == "from-env-account"
    assert config.resolved_api_key == "from-env-key"
    direct = dataclasses.replace(
        config, client_id="direct-id", client_secret="direct-secret", account_id="acct"
    )
    assert direct.resolved_client_id == "direct-id"
    assert direct.resolved_client_secret == "direct-secret"
    assert direct.resolved_account_id == "acct"


def test_resolved_values_treat_empty_variables_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X_ID", "")
    config = AuthConfig(service="x", client_id_env="X_ID", api_key_env="X_ID")
    assert config.resolved_client_id is None
    assert config.resolved_api_key is None


def test_supports_oauth_needs_both_endpoints() -> None:
    assert not AuthConfig(service="x", oauth_token_url="https://a/t").supports_oauth
    assert not AuthConfig(service="x", oauth_authorize_url="https://a/a").supports_oauth
    both = AuthConfig(
        service="x", oauth_authorize_url="https://a/a", oauth_token_url="https://a/t"
    )
    assert both.supports_oauth


def test_token_path_defaults_to_home(planopticon_home: Path) -> None:
    config = AuthConfig(service="notion")
    assert config.resolved_token_path == planopticon_home / "notion_token.json"


def test_token_path_defaults_to_dot_planopticon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PLANOPTICON_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    config = AuthConfig(service="zoom")
    assert config.resolved_token_path == tmp_path / ".planopticon" / "zoom_token.json"


def test_explicit_token_path_wins(tmp_path: Path) -> None:
    config = AuthConfig(service="zoom", token_path=tmp_path / "mine.json")
    assert config.resolved_token_path == tmp_path / "mine.json"


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "sp ace"])
def test_unsafe_service_name_needs_token_path(name: str, tmp_path: Path) -> None:
    config = AuthConfig(service=name)
    with pytest.raises(ConfigurationError, match="Invalid service name"):
        _ = config.resolved_token_path
    explicit = AuthConfig(service=name, token_path=tmp_path / "t.json")
    assert explicit.resolved_token_path == tmp_path / "t.json"


def test_empty_service_name_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="Invalid service name"):
        AuthConfig(service="")


def test_reprs_mask_secrets() -> None:
    config = AuthConfig(
        service="x", client_id="visible-id", client_secret="s3cr3t-value"
    )
    result = AuthResult(
        success=True, access_token="at-value-123", refresh_token="rt-value-456"
    )
    assert "s3cr3t-value" not in repr(config)
    assert "visible-id" in repr(config)
    assert "at-value-123" not in repr(result)
    assert "rt-value-456" not in repr(result)
    assert "'***'" in repr(result)


def test_importing_auth_loads_no_http_or_cli_library() -> None:
    code = (
        "import json, sys, video_processor.auth; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('httpx', 'authlib', 'click', 'filelock'))))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == []
