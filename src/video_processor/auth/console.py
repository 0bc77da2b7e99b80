"""Output and input of the interactive steps, for the person signing in.

Everything goes to standard error, so that standard output stays free for
commands whose output is a token.
"""

from __future__ import annotations

import os
import select
import sys
import time
import webbrowser
from typing import Callable, Optional, TextIO

BROWSER_OPENER = Callable[[str], bool]


class Console:
    """Streams and browser of one interactive sign-in.

    Args:
        stdin: Where pasted codes and URLs are read from.
        stderr: Where instructions are written.
        open_browser: Opens a URL and returns whether a browser started;
            ``None`` means the URL is only printed.
    """

    def __init__(
        self,
        *,
        stdin: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
        open_browser: Optional[BROWSER_OPENER] = webbrowser.open,
    ) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stderr = stderr if stderr is not None else sys.stderr
        self.open_browser = open_browser
        self._pending = b""

    def say(self, text: str) -> None:
        """Write a line of instructions."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def show_url(self, url: str, action: str) -> None:
        """Print ``url`` and open it in a browser unless opening is disabled."""
        self.say(f"{action}\n\n    {url}\n")
        if self.open_browser is None:
            return
        try:
            opened = self.open_browser(url)
        except Exception:
            opened = False
        if not opened:
            self.say("No browser could be opened; open the URL above yourself.")

    def ask(self, prompt: str, *, timeout: Optional[float] = None) -> Optional[str]:
        """Read one non-empty line; return ``None`` at end of input.

        Raises:
            TimeoutError: No line arrived within ``timeout`` seconds. Without
                a descriptor to watch (Windows, or a stream without one) the
                read blocks regardless.
        """
        self.stderr.write(prompt)
        self.stderr.flush()
        if timeout is None or self.input_fd() is None:
            line = self.stdin.readline()
            return line.strip() if line else None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            answer = self.poll_line(min(remaining, 0.5))
            if answer == "":
                return None
            if answer:
                return answer
        raise TimeoutError(f"no input within {timeout:g} s")

    def input_fd(self) -> Optional[int]:
        """Return the input's file descriptor if ``select`` can watch it.

        Windows cannot ``select`` on a console or pipe, so there the pasted
        URL is not watched while the redirect listener waits.
        """
        if os.name != "posix":
            return None
        try:
            return self.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def poll_line(self, timeout: float) -> Optional[str]:
        """Return a line if one arrives within ``timeout`` seconds.

        Returns ``""`` at end of input and ``None`` when nothing arrived.
        The descriptor is read directly: a buffered ``readline`` could pull a
        second line into a buffer that ``select`` cannot see.
        """
        descriptor = self.input_fd()
        if descriptor is None:
            return None
        if b"\n" not in self._pending:
            readable, _, _ = select.select([descriptor], [], [], timeout)
            if not readable:
                return None
            chunk = os.read(descriptor, 4096)
            if not chunk:
                line, self._pending = self._pending, b""
                return line.decode(errors="replace").strip() if line.strip() else ""
            self._pending += chunk
        if b"\n" not in self._pending:
            return None
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace").strip() or None
