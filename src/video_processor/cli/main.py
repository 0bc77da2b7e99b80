"""The ``planopticon`` entry point: global options, logging and errors."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional, Sequence

import click

from ..auth.errors import AuthError
from .auth import auth


class _Root(click.Group):
    """Turn library errors into one ``Error:`` line unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (
            click.ClickException,
            click.exceptions.Exit,
            click.Abort,
            BrokenPipeError,
        ):
            raise
        except AuthError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(
                f"Error: unexpected {type(exc).__name__}. Run again with "
                "`planopticon --debug ...` to see the traceback.",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=_Root)
@click.option(
    "-v", "--verbose", count=True, help="Log more: -v for INFO, -vv for DEBUG."
)
@click.option(
    "--debug", is_flag=True, help="Log at DEBUG and show tracebacks on errors."
)
@click.version_option(package_name="planopticon")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """PlanOpticon: pull recordings and documents into an analysis pipeline."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    if verbose >= 2 or debug:
        level = logging.DEBUG
    _configure_logging(level)


cli.add_command(auth)


def _configure_logging(level: int) -> None:
    logger = logging.getLogger("video_processor")
    logger.setLevel(level)
    if not any(getattr(h, "_planopticon", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._planopticon = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command line."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="planopticon")
    except BrokenPipeError:
        # The reader of standard output (for example `head`) went away.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
