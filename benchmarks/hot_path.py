"""Measure ``get_token()`` on a valid saved token, in one process.

Prints the cost of the first call (file read and parse) and of repeated calls
(one stat, the file is unchanged). Next to them it measures, in alternating
rounds of the same run, a naive implementation that opens and parses the file
on every call and takes no lock. Also prints the memory that repeated calls
leave allocated and which HTTP and OAuth libraries the calls imported.

Usage: python benchmarks/hot_path.py [--calls N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _naive_get_token(path: Path) -> str:
    """Read and parse the token file on every call, with no lock or cache."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if time.time() >= data["expires_at"]:
        raise RuntimeError("expired")
    return str(data["access_token"])


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

        # Both run in alternating rounds, so that a slower stretch of a
        # shared machine weighs on both alike.
        samples: list[float] = []
        naive: list[float] = []
        rounds = 20
        for _ in range(rounds):
            for _ in range(args.calls // rounds):
                started = time.perf_counter()
                manager.get_token()
                samples.append((time.perf_counter() - started) * 1e6)
            for _ in range(args.calls // rounds):
                started = time.perf_counter()
                _naive_get_token(path)
                naive.append((time.perf_counter() - started) * 1e6)

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
    for label, values in (("get_token", samples), ("naive", naive)):
        median = statistics.median(values)
        print(
            f"{label}, {args.calls} calls: {1e6 / median:,.0f} calls/s, median "
            f"{median:.1f} us, p99 {_percentile(values, 0.99):.1f} us"
        )
    ratio = statistics.median(naive) / statistics.median(samples)
    print(f"get_token calls/s over naive calls/s: {ratio:.1f}x")
    print(f"memory retained after {args.calls} more calls: {retained} bytes")
    print(f"HTTP, OAuth, lock or CLI modules imported: {loaded or 'none'}")


if __name__ == "__main__":
    main()
