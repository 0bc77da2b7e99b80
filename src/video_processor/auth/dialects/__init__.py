"""Request and response conventions of each service's OAuth endpoints.

A dialect turns a grant into an ``EndpointRequest`` (client authentication,
body encoding, headers) and adds the authorization URL parameters that a
lasting sign-in needs. ``Dialect`` itself is plain RFC 6749 and is used for
any service that is not one of the known six. The dialect follows the
config's ``dialect`` field or its ``service`` name, never the endpoint's
host, so a proxy, an enterprise host or a test server speaks the same
dialect as the service it stands for.
"""

from __future__ import annotations

from typing import Dict

from ..config import AuthConfig
from ..errors import ConfigurationError
from ._base import DEVICE_CODE_GRANT, FORM, Client, Dialect, split_client
from .dropbox import DropboxDialect
from .github import GitHubDialect
from .google import GoogleDialect
from .microsoft import MicrosoftDialect, with_tenant
from .notion import NotionDialect
from .zoom import ZoomDialect

DIALECTS: Dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect(),
        ZoomDialect(),
        GoogleDialect(),
        MicrosoftDialect(),
        DropboxDialect(),
        GitHubDialect(),
        NotionDialect(),
    )
}


def get_dialect(config: AuthConfig) -> Dialect:
    """Return the dialect named by ``config.dialect`` or its service.

    Raises:
        ConfigurationError: ``config.dialect`` names no known dialect.
    """
    if config.dialect:
        try:
            return DIALECTS[config.dialect]
        except KeyError:
            raise ConfigurationError(
                f"{config.service}: unknown dialect {config.dialect!r}; use one "
                f"of {', '.join(sorted(DIALECTS))}."
            ) from None
    return DIALECTS.get(config.service, DIALECTS["standard"])


__all__ = [
    "DEVICE_CODE_GRANT",
    "DIALECTS",
    "FORM",
    "Client",
    "Dialect",
    "get_dialect",
    "split_client",
    "with_tenant",
]
