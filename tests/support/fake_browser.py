"""Browser stand-in that signs in at the test authorization server over HTTP.

Usage: ``python fake_browser.py URL``. Tests put it in the ``BROWSER`` environment
variable, so ``webbrowser.open`` in the product runs it and waits for it to exit.

Starting from URL, it follows redirects by hand with a cookie-keeping
``httpx.Client``:

- On the authorization server's ``/interaction/{uid}`` pages (the development
  login and consent pages of oidc-provider) it submits the login form and then the
  consent form, or follows the abort link when denying.
- A redirect to an http URL on a loopback host but on another origin than URL is
  the product's redirect listener. The browser requests it once, without following
  further redirects, records the status and body, and stops.
- A redirect to another scheme (a private-use URI such as
  ``com.example.planopticon:/oauth2redirect``) is recorded but not requested.
- Any other page (an error page, or a server that responds to the authorization
  request with a page) is recorded and ends the run.

Requests go only to 127.0.0.1, localhost and ::1. Any other host is rejected and
reported as an error.

Environment variables:

- ``FAKE_BROWSER_ACTION``: ``consent`` (default) grants access, ``deny`` aborts at
  the consent page so the server redirects with ``error=access_denied``, and
  ``ignore`` makes no request at all, like a user who never signs in.
  ``remote`` consents but records the redirect to the listener without
  requesting it, like a browser on another machine.
- ``FAKE_BROWSER_LOGIN``: the login name to submit, which becomes the ``sub`` of the
  tokens (default ``test-user``).
- ``FAKE_BROWSER_LOG``: a file that receives one JSON object per run, one per line,
  with the keys of ``BrowserResult``.

The exit status is 0 whenever the result could be recorded, even when the run
failed, so ``webbrowser.open`` does not fall through to a real browser. Failures
are in the ``error`` field. The exit status is 2 for a missing URL argument.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser

import httpx

REQUEST_TIMEOUT_SECONDS = 10.0
MAX_STEPS = 30
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
INTERACTION_PATH = re.compile(r"^/interaction/[^/]+$")
ACTIONS = ("consent", "deny", "ignore", "remote")
DEFAULT_LOGIN = "test-user"
LOGIN_PASSWORD = "any-password"


class BrowserError(Exception):
    """Failure that ends a browser run, such as a rejected host or an unknown page."""


@dataclass
class BrowserResult:
    """Outcome of one browser run, written as one line of JSON to the log."""

    url: str
    action: str
    final_url: str | None = None
    listener_status: int | None = None
    listener_body: str | None = None
    page_status: int | None = None
    page_body: str | None = None
    error: str | None = None
    # Requests in the order sent, as "METHOD URL".
    history: list[str] = field(default_factory=list)


@dataclass
class HtmlForm:
    """Form of an HTML page with its hidden and text inputs."""

    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collect the forms and link targets of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self.links: list[str] = []
        self._current: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = HtmlForm(
                action=attributes.get("action", ""),
                method=attributes.get("method", "get").lower(),
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and "name" in attributes:
            self._current.inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_page(html: str) -> tuple[list[HtmlForm], list[str]]:
    """Return the forms and link targets of an HTML page."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.forms, parser.links


def is_loopback(url: httpx.URL) -> bool:
    return url.scheme in ("http", "https") and url.host in LOOPBACK_HOSTS


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def check_host(url: httpx.URL) -> None:
    """Raise BrowserError unless the URL is an http(s) URL on a loopback host."""
    if not is_loopback(url):
        raise BrowserError(
            f"rejected request to {url}: only http(s) URLs on "
            f"{', '.join(sorted(LOOPBACK_HOSTS))} are allowed"
        )


def find_form(forms: list[HtmlForm], prompt: str) -> HtmlForm | None:
    for form in forms:
        if form.inputs.get("prompt") == prompt:
            return form
    return None


def submit_interaction(
    client: httpx.Client,
    page: httpx.Response,
    action: str,
    login: str,
    result: BrowserResult,
) -> httpx.Response:
    """Submit one oidc-provider development interaction page and return the response.

    The page requests either a login (a form with ``prompt=login``) or for consent (a
    form with ``prompt=consent``). With ``action="deny"``, the browser follows the
    consent page's abort link instead of submitting the form.
    """
    forms, links = parse_page(page.text)
    login_form = find_form(forms, "login")
    if login_form is not None:
        data = {"prompt": "login", "login": login, "password": LOGIN_PASSWORD}
        return send(client, "POST", page.url.join(login_form.action), result, data)

    consent_form = find_form(forms, "consent")
    if consent_form is None:
        raise BrowserError(
            f"interaction page {page.url} has neither a login nor a consent form"
        )
    if action == "deny":
        abort_links = [link for link in links if link.endswith("/abort")]
        if abort_links:
            abort_url = page.url.join(abort_links[0])
        else:
            abort_url = page.url.copy_with(path=page.url.path + "/abort")
        return send(client, "GET", abort_url, result)
    target = page.url.join(consent_form.action)
    return send(client, "POST", target, result, {"prompt": "consent"})


def send(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    result: BrowserResult,
    data: dict[str, str] | None = None,
) -> httpx.Response:
    """Send one request after checking its host, and add it to the history."""
    check_host(url)
    result.history.append(f"{method} {url}")
    return client.request(method, url, data=data)


def run(url: str, action: str, login: str) -> BrowserResult:
    """Open the URL and act on the pages and redirects that follow."""
    result = BrowserResult(url=url, action=action)
    if action not in ACTIONS:
        result.error = (
            f"invalid FAKE_BROWSER_ACTION {action!r}: expected one of "
            f"{', '.join(ACTIONS)}"
        )
        return result
    if action == "ignore":
        result.final_url = url
        return result

    try:
        start = httpx.URL(url)
        # trust_env=False keeps proxy variables from routing loopback requests
        # elsewhere.
        with httpx.Client(
            timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            response = send(client, "GET", start, result)
            follow(client, response, origin(start), action, login, result)
    except (BrowserError, httpx.HTTPError, httpx.InvalidURL) as error:
        result.error = f"{type(error).__name__}: {error}"
    return result


def follow(
    client: httpx.Client,
    response: httpx.Response,
    server_origin: tuple[str, str, int | None],
    action: str,
    login: str,
    result: BrowserResult,
) -> None:
    """Follow redirects and interaction pages from RESPONSE and fill in RESULT.

    SERVER_ORIGIN is the authorization server's (scheme, host, port). Redirects to
    any other http origin go to the product's redirect listener.
    """
    for _ in range(MAX_STEPS):
        if response.is_redirect:
            target = response.url.join(response.headers["location"])
            if target.scheme not in ("http", "https"):
                result.final_url = str(target)
                return
            if origin(target) != server_origin:
                result.final_url = str(target)
                if action == "remote":
                    return
                listener_response = send(client, "GET", target, result)
                result.listener_status = listener_response.status_code
                result.listener_body = listener_response.text
                return
            response = send(client, "GET", target, result)
            continue

        if response.status_code == 200 and INTERACTION_PATH.match(response.url.path):
            response = submit_interaction(client, response, action, login, result)
            continue

        result.final_url = str(response.url)
        result.page_status = response.status_code
        result.page_body = response.text
        return

    raise BrowserError(f"gave up after {MAX_STEPS} redirects and form submissions")


def write_log(result: BrowserResult) -> None:
    path = os.environ.get("FAKE_BROWSER_LOG")
    line = json.dumps(asdict(result))
    if path:
        with open(path, "a", encoding="utf-8") as log_file:
            log_file.write(line + "\n")
    else:
        print(line)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: fake_browser.py URL", file=sys.stderr)
        return 2
    action = os.environ.get("FAKE_BROWSER_ACTION", "consent")
    login = os.environ.get("FAKE_BROWSER_LOGIN", DEFAULT_LOGIN)
    try:
        result = run(argv[1], action, login)
    except Exception as error:
        # Any failure is recorded, because a non-zero exit status would make
        # webbrowser.open try the next browser, which may be a real one.
        result = BrowserResult(url=argv[1], action=action)
        result.error = f"unexpected {type(error).__name__}: {error}"
    if result.error:
        print(f"fake_browser: {result.error}", file=sys.stderr)
    write_log(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
