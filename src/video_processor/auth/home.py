"""The PlanOpticon home directory and its ``config.toml``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict

from .errors import ConfigurationError

HOME_ENV = "PLANOPTICON_HOME"
CONFIG_FILE_NAME = "config.toml"


def planopticon_home() -> Path:
    """Return ``$PLANOPTICON_HOME`` if set, else ``~/.planopticon``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".planopticon"


def config_file_path() -> Path:
    """Return the path of ``config.toml`` in the PlanOpticon home."""
    return planopticon_home() / CONFIG_FILE_NAME


def load_service_tables() -> Dict[str, Dict[str, Any]]:
    """Read the ``[services.NAME]`` tables of ``config.toml``.

    Returns:
        A mapping from service name to its table, empty when the file does
        not exist.

    Raises:
        ConfigurationError: The file is not valid TOML or ``services`` is
            not a table of tables.
    """
    path = config_file_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        hint = ""
        if os.environ.get(HOME_ENV):
            hint = f" Check {HOME_ENV}, which is set to {os.environ[HOME_ENV]!r}."
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror}.{hint}") from exc

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML ({exc}). Fix the file or move it away."
        ) from exc

    unknown = sorted(set(document) - {"services"})
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level key {unknown[0]!r}. Only [services.NAME] "
            "tables are read; check the spelling of 'services'."
        )
    services = document.get("services", {})
    if not isinstance(services, dict) or not all(
        isinstance(table, dict) for table in services.values()
    ):
        raise ConfigurationError(
            f"{path}: 'services' must contain tables such as [services.zoom]."
        )
    return services
