"""The small pages the redirect listener shows in the browser."""

from __future__ import annotations

import html
from typing import Optional

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>PlanOpticon sign-in</title></head>
<body style="font-family: sans-serif; margin: 3em;">{body}</body></html>
"""


def success_page() -> str:
    """Return the page shown after a successful redirect."""
    return _PAGE.format(
        body="<h1>Signed in</h1><p>PlanOpticon received the authorization. "
        "You can close this window and return to the terminal.</p>"
    )


def error_page(error: str, description: Optional[str]) -> str:
    """Return the page shown when the service redirected with an error."""
    detail = f": {html.escape(description)}" if description else ""
    return _PAGE.format(
        body="<h1>Sign-in failed</h1><p>The service returned "
        f"<code>{html.escape(error)}</code>{detail}.</p>"
        "<p>You can close this window; the terminal says what to do next.</p>"
    )
