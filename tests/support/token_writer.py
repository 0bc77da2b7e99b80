"""Save tokens in a loop until killed: ``python token_writer.py TOKEN_PATH``.

Each token's access token is ``token-N`` with a long padding, so that a torn
write would be visible. Prints ``writing`` after the first save.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken

PADDING = "x" * 4096


def main() -> None:
    store = TokenStore(Path(sys.argv[1]))
    for counter in itertools.count():
        store.save(
            StoredToken(
                access_token=f"token-{counter}-{PADDING}",
                refresh_token=f"refresh-{counter}",
                expires_at=None,
            )
        )
        if counter == 0:
            print("writing", flush=True)


if __name__ == "__main__":
    main()
