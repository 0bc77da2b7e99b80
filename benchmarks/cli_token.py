"""Measure ``planopticon auth token`` as a script would call it.

Saves a valid token for a service defined in a temporary ``config.toml``,
then runs the console script repeatedly and prints the median and maximum
wall time per run, next to a bare ``python -c pass`` for comparison.

Usage: python benchmarks/cli_token.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from video_processor.auth.store import TokenStore
from video_processor.auth.token import StoredToken


def _time_runs(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, check=False)
        samples.append((time.perf_counter() - started) * 1000)
        if completed.returncode != 0:
            raise SystemExit(completed.stderr.decode())
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "planopticon"
    with tempfile.TemporaryDirectory() as home:
        Path(home, "config.toml").write_text(
            '[services.bench]\noauth_token_url = "https://auth.invalid/token"\n'
        )
        TokenStore(Path(home) / "bench_token.json").save(
            StoredToken(access_token="t" * 900, expires_at=time.time() + 3600)
        )
        env = {**os.environ, "PLANOPTICON_HOME": home}
        token = _time_runs([str(script), "auth", "token", "bench"], env, args.runs)
        bare = _time_runs([sys.executable, "-c", "pass"], env, args.runs)
    print(f"{args.runs} runs each")
    print(
        f"planopticon auth token: median {statistics.median(token):.0f} ms, "
        f"max {max(token):.0f} ms"
    )
    print(
        f"python -c pass:         median {statistics.median(bare):.0f} ms, "
        f"max {max(bare):.0f} ms"
    )


if __name__ == "__main__":
    main()
