"""Hold a token file's lock until killed: ``python lock_holder.py TOKEN_PATH``.

Prints ``locked`` once the lock is held.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from video_processor.auth.store import TokenStore


def main() -> None:
    store = TokenStore(Path(sys.argv[1]))
    with store.lock():
        print("locked", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
