"""Fake OAuth servers for Zoom, Google, Microsoft, Dropbox, GitHub and Notion.

Each fake listens on 127.0.0.1 and behaves like that service's OAuth endpoints as
its documentation describes them, so tests can point the product at it by
configuration. ``support.provider_fixtures`` starts one per test.
"""

from .base import ProviderServer, RecordedRequest, TokenRecord
from .dropbox import DropboxServer
from .github import GitHubServer
from .google import GoogleServer
from .microsoft import MicrosoftServer
from .notion import NotionServer
from .zoom import ZoomServer

__all__ = [
    "DropboxServer",
    "GitHubServer",
    "GoogleServer",
    "MicrosoftServer",
    "NotionServer",
    "ProviderServer",
    "RecordedRequest",
    "TokenRecord",
    "ZoomServer",
]
