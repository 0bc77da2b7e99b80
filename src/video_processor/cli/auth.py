"""``planopticon auth``: sign in, sign out, print a token, show status."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import click

from ..auth import AuthConfig, OAuthManager
from ..auth.errors import AuthError, RevocationError
from ..auth.home import config_file_path, planopticon_home
from ..auth.manager import INTERACTIVE_ENV
from ..auth.providers import KNOWN_CONFIGS, configured_services, load_auth_config
from ..auth.status import display_name, service_status, status_document


class _UsageProblem(click.ClickException):
    """A wrong argument value, reported without the usage lines."""

    exit_code = 2


class _AuthGroup(click.Group):
    """A group whose first argument is a subcommand or a service name.

    A service name runs the sign-in command under that name, so usage
    messages read ``planopticon auth zoom [OPTIONS]``.
    """

    def resolve_command(
        self, ctx: click.Context, args: List[str]
    ) -> tuple[Optional[str], Optional[click.Command], List[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return args[0], sign_in, args[1:]
        return super().resolve_command(ctx, args)

    def format_commands(
        self, ctx: click.Context, formatter: click.HelpFormatter
    ) -> None:
        super().format_commands(ctx, formatter)
        rows = [(name, _sign_in_hint(name)) for name in _service_names()]
        with formatter.section("Services (sign in with `planopticon auth SERVICE`)"):
            formatter.write_dl(rows)


@click.group(cls=_AuthGroup, invoke_without_command=True)
@click.pass_context
def auth(ctx: click.Context) -> None:
    """Sign in to a service, sign out, print a token or show status.

    \b
    planopticon auth SERVICE             sign in (browser, device code or key)
    planopticon auth SERVICE --logout    remove the saved token
    planopticon auth status [SERVICE]    show credentials and saved tokens
    planopticon auth token SERVICE       print the access token for scripts

    Run `planopticon auth SERVICE --help` for the sign-in options (--device,
    --no-browser, --timeout, --logout, --revoke).
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@click.command()
@click.option("--logout", is_flag=True, help="Remove the saved token.")
@click.option(
    "--revoke", is_flag=True, help="With --logout: revoke at the service first."
)
@click.option(
    "--device/--no-device",
    default=None,
    help="Sign in with a code entered on another device, or never. By default "
    "the device flow is used when no browser can be opened and the service "
    "offers it.",
)
@click.option(
    "--no-browser",
    is_flag=True,
    help="Print the sign-in URL without opening it; paste the redirected URL back.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the browser or a pasted code.",
)
@click.pass_context
def sign_in(
    ctx: click.Context,
    logout: bool,
    revoke: bool,
    device: Optional[bool],
    no_browser: bool,
    timeout: float,
) -> None:
    """Sign in to this service, or sign out with --logout."""
    service = ctx.info_name or ""
    if revoke and not logout:
        raise _UsageProblem("--revoke only works together with --logout.")
    config = _config_or_usage_error(service)
    manager = OAuthManager(
        config,
        # An explicit PLANOPTICON_INTERACTIVE decides; otherwise a person who
        # runs this command is present to sign in.
        interactive=None if os.environ.get(INTERACTIVE_ENV) else True,
        device=device,
        open_browser=not no_browser,
        login_timeout=timeout,
    )
    name = display_name(service)
    if logout:
        _logout(manager, name, revoke)
        return
    result = manager.authenticate()
    if not result.success:
        raise click.ClickException(result.error or f"{name} authentication failed.")
    click.echo(f"{name} authentication successful ({result.method}).")


def _logout(manager: OAuthManager, name: str, revoke: bool) -> None:
    had_token = manager.store.path.exists()
    try:
        manager.clear_token(revoke=revoke)
    except RevocationError as exc:
        raise click.ClickException(f"{exc} The saved token was removed.") from None
    if not had_token:
        click.echo(f"No saved {name} token to remove.")
    elif revoke:
        click.echo(
            f"Revoked the {name} token at the service and removed the saved token."
        )
    else:
        click.echo(f"Removed the saved {name} token.")


@auth.command("token")
@click.argument("service")
@click.option(
    "--interactive",
    is_flag=True,
    help="Allow a browser or device-code sign-in if needed.",
)
def token(service: str, interactive: bool) -> None:
    """Print only the access token of SERVICE, refreshed if due.

    For scripts: `curl -H "Authorization: Bearer $(planopticon auth token zoom)"`.
    On failure nothing is printed on standard output and the exit code is 1.
    """
    config = _config_or_usage_error(service)
    manager = OAuthManager(config, interactive=interactive or False)
    result = manager.authenticate()
    if not result.success or not result.access_token:
        raise click.ClickException(result.error or "authentication failed.")
    click.echo(result.access_token)


@auth.command("status")
@click.argument("service", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def status(service: Optional[str], as_json: bool) -> None:
    """Show credentials and saved tokens of every service, or of SERVICE.

    Every known service is listed, followed by those defined in config.toml.
    """
    if service:
        configs = [_config_or_usage_error(service)]
    else:
        configs = [c for c in map(load_auth_config, _service_names()) if c is not None]
    if as_json:
        document = status_document(configs, str(planopticon_home()))
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    entries = [service_status(config) for config in configs]
    for entry in entries:
        for line in _status_lines(entry, detail=service is not None):
            click.echo(line)
    if service is None and not any(_worth_listing(entry) for entry in entries):
        click.echo("No credentials are set and no token is saved.")
        click.echo("Run `planopticon auth --help` to see how to sign in.")


def _worth_listing(entry: Dict[str, Any]) -> bool:
    return bool(
        entry["configured"] or entry["token"] or any(entry["credentials"].values())
    )


def _status_lines(entry: Dict[str, Any], *, detail: bool) -> List[str]:
    lines = [f"{entry['display_name']} ({entry['service']})"]
    variables = entry["credentials"]
    if variables:
        listing = ", ".join(
            f"{k} {'set' if v else 'not set'}" for k, v in variables.items()
        )
        lines.append(f"  credentials: {listing}")
    lines.extend("  " + line for line in _token_lines(entry["token"]))
    if detail:
        lines.append(f"  token file: {entry['token_path']}")
        requested = " ".join(entry["requested_scopes"]) or "(none)"
        lines.append(f"  requested scopes: {requested}")
    return lines


def _token_lines(token: Optional[Dict[str, Any]]) -> List[str]:
    if token is None:
        return ["token: none saved"]
    if token["state"] in ("corrupt", "unreadable"):
        return [f"token: {token['state']} ({token['problem']})"]
    lines = [f"token: {token['state']}, obtained via {token['method'] or 'unknown'}"]
    if token["expires_at"] is None:
        lines.append("expires: never (valid until the service rejects it)")
    else:
        lines.append(f"expires: {token['expires_at_utc']} ({_relative(token)})")
    lines.append(f"refreshable: {'yes' if token['refreshable'] else 'no'}")
    granted = " ".join(token["granted_scopes"]) or "(not reported)"
    lines.append(f"granted scopes: {granted}")
    lines.append(f"file mode: {token['file_mode']}")
    return lines


def _relative(token: Dict[str, Any]) -> str:
    seconds = token["expires_in_seconds"]
    minutes = round(abs(seconds) / 60)
    return f"in {minutes} min" if seconds >= 0 else f"{minutes} min ago"


def _service_names() -> List[str]:
    try:
        return configured_services()
    except AuthError:
        return list(KNOWN_CONFIGS)


def _sign_in_hint(service: str) -> str:
    config = KNOWN_CONFIGS.get(service)
    if config is None:
        return "defined in config.toml"
    names = [n for n in (config.client_id_env, config.client_secret_env) if n]
    hint = " + ".join(names)
    if config.account_id_env:
        hint += f" (+ {config.account_id_env} for app-only)"
    if config.api_key_env:
        hint += f", or {config.api_key_env}"
    return hint


def _config_or_usage_error(service: str) -> AuthConfig:
    config = load_auth_config(service)
    if config is None:
        known = ", ".join(_service_names())
        raise _UsageProblem(
            f"Unknown service {service!r}. Known services: {known}. Define others "
            f"as [services.NAME] in {config_file_path()}."
        )
    return config
