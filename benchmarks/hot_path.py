"""Measure ``get_token()`` on a valid saved token, in one process.

Prints the cost of the first call (file read and parse), of repeated calls
(stat only, the file is unchanged), of a forced re-read for comparison, and
the memory that 100,000 repeated calls leave allocated. Also reports which
HTTP and OAuth libraries the calls imported.

Usage: python benchmarks/hot_path.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()

    started = time.perf_counter()
    from video_processor.auth import AuthConfig, OAuthManager
    from video_processor.auth.store import TokenStore
    from video_processor.auth.token import StoredToken

    import_ms = (time.perf_counter() - started) * 1000

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench_token.json"
        TokenStore(path).save(
            StoredToken(
                access_token="a" * 900,
                refresh_token="r" * 300,
                expires_at=time.time() + 3600,
                client_id="bench-client",
                scope="read write",
            )
        )
        # A fresh process's first call: nothing cached yet.
        from video_processor.auth import store as store_module

        store_module._cache.clear()
        manager = OAuthManager(AuthConfig(service="bench", token_path=path))
        started = time.perf_counter()
        assert manager.get_token()
        first_us = (time.perf_counter() - started) * 1e6

        samples = []
        for _ in range(args.calls):
            started = time.perf_counter()
            manager.get_token()
            samples.append((time.perf_counter() - started) * 1e6)

        reread = []
        store = TokenStore(path)
        for _ in range(min(args.calls, 20_000)):
            started = time.perf_counter()
            store.load(use_cache=False)
            reread.append((time.perf_counter() - started) * 1e6)

        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(args.calls):
            manager.get_token()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))

    loaded = sorted(
        name
        for name in sys.modules
        if name.split(".")[0] in ("httpx", "authlib", "filelock", "click")
    )
    print(f"python {sys.version.split()[0]} on {sys.platform}")
    print(f"import video_processor.auth: {import_ms:.1f} ms")
    print(f"first get_token (read + parse): {first_us:.0f} us")
    print(
        f"repeated get_token, {args.calls} calls: median "
        f"{statistics.median(samples):.1f} us, p99 {_percentile(samples, 0.99):.1f} us"
    )
    print(
        "forced re-read and parse, for comparison: median "
        f"{statistics.median(reread):.1f} us, p99 {_percentile(reread, 0.99):.1f} us"
    )
    print(f"memory retained after {args.calls} more calls: {retained} bytes")
    print(f"HTTP, OAuth, lock or CLI modules imported: {loaded or 'none'}")


if __name__ == "__main__":
    main()
