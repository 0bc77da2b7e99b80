"""The interactive step: browser sign-in or the device flow, and the choice."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

from ..config import AuthConfig
from ..console import Console
from ..dialects import get_dialect
from ..endpoint import HttpSettings
from ..errors import ConfigurationError, DeviceFlowUnavailableError
from ..token import StoredToken
from .authorization_code import sign_in_with_browser
from .device import sign_in_with_device_code

logger = logging.getLogger(__name__)


def sign_in_interactively(
    config: AuthConfig,
    console: Console,
    *,
    device: Optional[bool],
    open_browser: bool,
    timeout: float,
    settings: HttpSettings,
) -> StoredToken:
    """Sign in with the device flow or the authorization code flow.

    Args:
        device: ``True`` forces the device flow, ``False`` forbids it, and
            ``None`` uses it when no browser can be opened and the service
            offers it, falling back to the code flow if the service rejects
            the device authorization request.
        open_browser: Whether the person wants the URL opened here.

    Raises:
        AuthError: The sign-in failed; see the flows for the subclasses.
    """
    if use_device_flow(config, device=device, open_browser=open_browser):
        try:
            return sign_in_with_device_code(
                config, console, timeout=timeout, settings=settings
            )
        except DeviceFlowUnavailableError as exc:
            if device:
                raise
            # Chosen only because no browser was found: the code flow, with a
            # pasted redirect URL, still works.
            console.say(
                f"The device flow is not available ({exc.summary}); "
                "signing in with a URL instead."
            )
    return sign_in_with_browser(config, console, timeout=timeout, settings=settings)


def use_device_flow(
    config: AuthConfig, *, device: Optional[bool], open_browser: bool
) -> bool:
    """Return whether to sign in with the device flow.

    Raises:
        ConfigurationError: The device flow is forced but not configured.
    """
    if device is not None:
        if device and not config.device_authorization_url:
            raise ConfigurationError(
                f"{config.service}: the device flow needs a "
                "device_authorization_url, and none is configured."
            )
        return device
    if not open_browser:
        return False  # the person asked for the URL, to open it elsewhere
    if not config.device_authorization_url or browser_available():
        return False
    return get_dialect(config).device_flow_when_headless


def browser_available() -> bool:
    """Guess whether ``webbrowser`` can open a browser a person will see."""
    if os.environ.get("BROWSER"):
        return True
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
