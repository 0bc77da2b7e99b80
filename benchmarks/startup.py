"""Measure start-up costs next to a bare ``python -c pass``.

Runs each command repeatedly as a new process and prints the median and
maximum wall time: ``import video_processor.auth``, a cold
``planopticon auth status``, and ``planopticon auth token`` with a valid
saved token, as a script would call it.

Usage: python benchmarks/startup.py [--runs N]
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
    script = str(Path(sys.executable).parent / "planopticon")
    with tempfile.TemporaryDirectory() as home:
        Path(home, "config.toml").write_text(
            '[services.bench]\noauth_token_url = "https://auth.invalid/token"\n'
        )
        TokenStore(Path(home) / "bench_token.json").save(
            StoredToken(access_token="t" * 900, expires_at=time.time() + 3600)
        )
        env = {**os.environ, "PLANOPTICON_HOME": home}
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import video_processor.auth": [
                sys.executable,
                "-c",
                "import video_processor.auth",
            ],
            "planopticon auth status": [script, "auth", "status"],
            "planopticon auth token bench": [script, "auth", "token", "bench"],
        }
        print(f"{args.runs} runs each, new process per run")
        for label, command in commands.items():
            samples = _time_runs(command, env, args.runs)
            print(
                f"{label:<30} median {statistics.median(samples):4.0f} ms, "
                f"max {max(samples):4.0f} ms"
            )


if __name__ == "__main__":
    main()
