"""A batch job for concurrency tests: wait for a start signal, get a token.

Usage: ``python token_worker.py CONFIG_JSON START_FILE``. CONFIG_JSON contains
``AuthConfig`` keyword arguments. The worker waits until START_FILE exists,
so that every worker requests a token at nearly the same moment, then prints one JSON
line with the result's ``success``, ``method``, ``access_token`` and
``error``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from video_processor.auth import AuthConfig, OAuthManager


def main() -> int:
    config = AuthConfig(**json.loads(Path(sys.argv[1]).read_text()))
    start = Path(sys.argv[2])
    manager = OAuthManager(config, interactive=False, lock_timeout=60)
    deadline = time.monotonic() + 30
    while not start.exists():
        if time.monotonic() > deadline:
            print(json.dumps({"success": False, "error": "no start signal"}))
            return 1
        time.sleep(0.002)
    result = manager.authenticate()
    print(
        json.dumps(
            {
                "success": result.success,
                "method": result.method,
                "access_token": result.access_token,
                "error": result.error,
            }
        )
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
