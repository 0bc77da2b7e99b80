"""``planopticon auth`` commands, through click's runner and as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.auth_helpers import (
    expire_saved_token,
    idp_service_table,
    write_service_table,
)
from support.idp import IdentityProvider
from support.secrets_check import assert_no_secret
from video_processor.cli.main import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def idp_service(idp: IdentityProvider, planopticon_home: Path) -> str:
    write_service_table(planopticon_home, "idp", idp_service_table(idp, "public-app"))
    return "idp"


def test_auth_without_service_lists_services(runner: CliRunner) -> None:
    result = _run(runner, "auth")
    assert result.exit_code == 0
    assert "Services (sign in with `planopticon auth SERVICE`)" in result.output
    for service in ("zoom", "notion", "dropbox", "github", "google", "microsoft"):
        assert f"  {service} " in result.output
    assert "ZOOM_ACCOUNT_ID" in result.output


def test_unknown_service_is_a_usage_error(runner: CliRunner) -> None:
    result = _run(runner, "auth", "nosuch")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: Unknown service 'nosuch'. Known services: zoom,"
    )
    assert "[services.NAME]" in result.stderr


def test_sign_in_prints_success(
    runner: CliRunner, idp_service: str, browser_env
) -> None:
    result = _run(runner, "auth", idp_service)
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[-1] == "idp authentication successful (oauth_pkce)."
    )
    assert browser_env.listener_status == 200


def test_known_service_message_uses_display_name(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_exampletokenvalue")
    result = _run(runner, "auth", "github")
    assert result.exit_code == 0
    assert result.stdout == "GitHub authentication successful (api_key).\n"


def test_failed_sign_in_exits_one_with_error_line(runner: CliRunner) -> None:
    result = _run(runner, "auth", "zoom")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: zoom: no authentication method succeeded.")
    assert "ZOOM_CLIENT_ID" in lines[0]


def test_logout_removes_saved_token(
    runner: CliRunner, idp_service: str, browser_env, planopticon_home: Path
) -> None:
    assert _run(runner, "auth", idp_service).exit_code == 0
    token_file = planopticon_home / "idp_token.json"
    assert token_file.exists()
    result = _run(runner, "auth", idp_service, "--logout")
    assert result.exit_code == 0
    assert result.stdout == "Removed the saved idp token.\n"
    assert not token_file.exists()
    again = _run(runner, "auth", idp_service, "--logout")
    assert again.stdout == "No saved idp token to remove.\n"


def test_revoke_without_logout_is_a_usage_error(runner: CliRunner) -> None:
    result = _run(runner, "auth", "zoom", "--revoke")
    assert result.exit_code == 2
    assert "--revoke only works together with --logout" in result.stderr


def test_token_prints_only_the_token(
    runner: CliRunner, idp_service: str, browser_env, planopticon_home: Path
) -> None:
    _run(runner, "auth", idp_service)
    saved = json.loads((planopticon_home / "idp_token.json").read_text())
    result = _run(runner, "auth", "token", idp_service)
    assert result.exit_code == 0
    assert result.stdout == saved["access_token"] + "\n"
    assert result.stderr == ""


def test_token_refreshes_expired_token(
    runner: CliRunner, idp_service: str, browser_env, planopticon_home: Path
) -> None:
    _run(runner, "auth", idp_service)
    old = expire_saved_token(planopticon_home / "idp_token.json")
    result = _run(runner, "auth", "token", idp_service)
    assert result.exit_code == 0
    assert result.stdout.strip() not in ("", old["access_token"])
    assert len(browser_env.runs) == 1


def test_token_failure_prints_nothing_on_stdout(
    runner: CliRunner, idp_service: str, browser_env
) -> None:
    result = _run(runner, "auth", "token", idp_service)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        "skipped because interactive sign-in is off for this run; sign in once "
        "with `planopticon auth idp`" in result.stderr
    )
    assert browser_env.runs == []


def test_token_interactive_flag_allows_sign_in(
    runner: CliRunner, idp_service: str, browser_env
) -> None:
    result = _run(runner, "auth", "token", idp_service, "--interactive")
    assert result.exit_code == 0
    assert len(result.stdout.strip()) > 20
    assert "\n" not in result.stdout.strip()


def test_status_without_anything_configured(runner: CliRunner) -> None:
    result = _run(runner, "auth", "status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Zoom (zoom)"
    assert "GitHub (github)" in lines
    assert lines.count("  token: none saved") == 6
    assert lines[-2:] == [
        "No credentials are set and no token is saved.",
        "Run `planopticon auth --help` to see how to sign in.",
    ]


def test_status_lists_configured_service_and_token(
    runner: CliRunner,
    idp_service: str,
    browser_env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOOM_CLIENT_ID", "zoom-client-id")
    _run(runner, "auth", idp_service)
    result = _run(runner, "auth", "status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    zoom = lines.index("Zoom (zoom)")
    assert lines[zoom + 1] == (
        "  credentials: ZOOM_CLIENT_ID set, ZOOM_CLIENT_SECRET not set, "
        "ZOOM_ACCOUNT_ID not set, ZOOM_REDIRECT_URI not set"
    )
    assert lines[zoom + 2] == "  token: none saved"
    idp = lines.index("idp (idp)")
    assert lines[idp + 1] == "  token: valid, obtained via oauth_pkce"
    assert lines[idp + 2].startswith("  expires: 20")
    assert lines[idp + 3] == "  refreshable: yes"
    assert lines[idp + 4] == "  granted scopes: openid offline_access read"
    assert lines[idp + 5] == "  file mode: 0600"
    github = lines.index("GitHub (github)")
    assert lines[github + 2] == "  token: none saved"
    assert "No credentials are set" not in result.stdout


def test_status_json_schema(
    runner: CliRunner, idp_service: str, browser_env, planopticon_home: Path
) -> None:
    _run(runner, "auth", idp_service)
    result = _run(runner, "auth", "status", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["home"] == str(planopticon_home)
    services = {entry["service"]: entry for entry in document["services"]}
    assert list(services)[:6] == [
        "zoom",
        "notion",
        "dropbox",
        "github",
        "google",
        "microsoft",
    ]
    entry = services["idp"]
    assert entry["token_path"] == str(planopticon_home / "idp_token.json")
    assert entry["token"]["state"] == "valid"
    assert entry["token"]["refreshable"] is True
    assert entry["token"]["granted_scopes"] == ["openid", "offline_access", "read"]
    assert entry["requested_scopes"] == ["openid", "offline_access", "read"]
    assert entry["token"]["file_mode"] == "0600"
    assert services["zoom"]["token"] is None
    assert services["zoom"]["credentials"]["ZOOM_CLIENT_ID"] is False


def test_status_of_one_service_shows_detail(
    runner: CliRunner, idp_service: str, browser_env, planopticon_home: Path
) -> None:
    _run(runner, "auth", idp_service)
    result = _run(runner, "auth", "status", idp_service)
    lines = result.stdout.splitlines()
    assert f"  token file: {planopticon_home / 'idp_token.json'}" in lines
    assert "  requested scopes: openid offline_access read" in lines


def test_status_reports_corrupt_file_without_moving_it(
    runner: CliRunner, planopticon_home: Path
) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "zoom_token.json").write_text("nonsense")
    result = _run(runner, "auth", "status", "zoom")
    assert "  token: corrupt (not a valid token file;" in result.stdout
    assert (planopticon_home / "zoom_token.json").exists()


def test_config_file_overrides_known_service(
    runner: CliRunner, planopticon_home: Path
) -> None:
    write_service_table(
        planopticon_home,
        "github",
        {"scopes": ["read:user"], "redirect_uri": "http://127.0.0.1:9999/cb"},
    )
    result = _run(runner, "auth", "status", "github", "--json")
    entry = json.loads(result.stdout)["services"][0]
    assert entry["requested_scopes"] == ["read:user"]


def test_config_file_with_unknown_key_is_reported(
    runner: CliRunner, planopticon_home: Path
) -> None:
    write_service_table(planopticon_home, "zoom", {"client_identifier": "x"})
    result = _run(runner, "auth", "zoom")
    assert result.exit_code == 1
    assert (
        "unknown key 'client_identifier'. Valid keys: oauth_authorize_url,"
        in result.stderr
    )


def test_invalid_config_file_is_reported(
    runner: CliRunner, planopticon_home: Path
) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "config.toml").write_text("[services.zoom\n")
    result = _run(runner, "auth", "zoom")
    assert result.exit_code == 1
    assert "config.toml is not valid TOML" in result.stderr
    assert "Traceback" not in result.output


def test_debug_flag_shows_traceback(runner: CliRunner, planopticon_home: Path) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "config.toml").write_text("[services.zoom\n")
    result = runner.invoke(cli, ["--debug", "auth", "zoom"])
    assert result.exit_code == 1
    assert result.exception is not None
    assert "is not valid TOML" in str(result.exception)


def test_no_secret_in_any_command_output(
    runner: CliRunner,
    idp: IdentityProvider,
    browser_env,
    planopticon_home: Path,
    debug_log,
) -> None:
    table = idp_service_table(idp, "confidential-app")
    write_service_table(planopticon_home, "idp", table)
    outputs = [_run(runner, "-vv", "auth", "idp").output]
    saved = json.loads((planopticon_home / "idp_token.json").read_text())
    expire_saved_token(planopticon_home / "idp_token.json")
    outputs.append(_run(runner, "-vv", "auth", "token", "idp").stderr)
    refreshed = json.loads((planopticon_home / "idp_token.json").read_text())
    for args in (
        ["auth", "status"],
        ["auth", "status", "--json"],
        ["auth", "status", "idp"],
    ):
        outputs.append(_run(runner, "-vv", *args).output)
    outputs.append(_run(runner, "-vv", "auth", "idp", "--logout").output)
    assert_no_secret(
        "\n".join(outputs) + debug_log.text,
        [
            table["client_secret"],
            saved["access_token"],
            saved["refresh_token"],
            refreshed["access_token"],
            refreshed["refresh_token"],
        ],
    )


def test_console_script_runs_as_a_process(planopticon_home: Path) -> None:
    env = {**os.environ, "PLANOPTICON_HOME": str(planopticon_home)}
    script = Path(sys.executable).parent / "planopticon"
    completed = subprocess.run(
        [str(script), "auth", "token", "zoom"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.startswith(
        "Error: zoom: no authentication method succeeded."
    )


def test_logout_reports_unremovable_file(
    runner: CliRunner, planopticon_home: Path
) -> None:
    (planopticon_home / "github_token.json").mkdir(parents=True)
    result = _run(runner, "auth", "github", "--logout")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Cannot remove the token file ")
    assert "revok" not in result.stderr.lower()


def test_logout_revoke_of_corrupt_file_fails(
    runner: CliRunner, planopticon_home: Path
) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "notion_token.json").write_text("garbage")
    result = _run(runner, "auth", "notion", "--logout", "--revoke")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: notion: nothing was revoked because the saved token file is corrupt; "
        "it was moved aside. The saved token was removed.\n"
    )
    assert len(list(planopticon_home.glob("notion_token.json.corrupt-*"))) == 1


def test_status_survives_extreme_expiry(
    runner: CliRunner, planopticon_home: Path
) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "zoom_token.json").write_text(
        '{"access_token": "a", "expires_at": 1e20}'
    )
    for args in (["auth", "status"], ["auth", "status", "--json"]):
        result = _run(runner, *args)
        assert result.exit_code == 0, result.output


def test_misspelled_services_table_is_reported(
    runner: CliRunner, planopticon_home: Path
) -> None:
    planopticon_home.mkdir()
    (planopticon_home / "config.toml").write_text('[service.github]\nscopes = ["x"]\n')
    result = _run(runner, "auth", "status")
    assert result.exit_code == 1
    assert "unknown top-level key 'service'" in result.stderr


def test_reserved_service_name_is_reported(
    runner: CliRunner, planopticon_home: Path
) -> None:
    write_service_table(planopticon_home, "token", {"api_key_env": "X"})
    result = _run(runner, "auth", "status", "token")
    assert result.exit_code == 1
    assert "[services.token] uses a name reserved for a command" in result.stderr


def test_home_that_is_a_file_names_variable(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_file = tmp_path / "not-a-directory"
    home_file.write_text("")
    monkeypatch.setenv("PLANOPTICON_HOME", str(home_file))
    result = _run(runner, "auth", "zoom")
    assert result.exit_code == 1
    assert "Check PLANOPTICON_HOME, which is set to" in result.stderr


def test_interactive_zero_applies_to_sign_in(
    runner: CliRunner,
    idp_service: str,
    browser_env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANOPTICON_INTERACTIVE", "0")
    result = _run(runner, "auth", idp_service)
    assert result.exit_code == 1
    assert "PLANOPTICON_INTERACTIVE=0 turns interactive sign-in off" in result.stderr
    assert browser_env.runs == []


def test_sign_in_usage_names_the_service(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["auth", "zoom", "--bogus"])
    assert result.exit_code == 2
    assert "auth zoom [OPTIONS]" in result.stderr
    assert "login" not in result.stderr
