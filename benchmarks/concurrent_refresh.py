"""Measure N processes that find the same expired token at the same moment.

Starts the test authorization server (tests/idp, oidc-provider) on loopback,
signs in once with the device flow, then for each N expires the saved token
and starts N batch jobs that call ``get_token()`` together. Prints, per N,
the refresh requests the server received, the distinct tokens the jobs got,
and the time from the start signal until the last job exited.

Usage: python benchmarks/concurrent_refresh.py [--jobs 1 4 16 64]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.idp import IdentityProvider, default_config  # noqa: E402
from video_processor.auth import AuthConfig, OAuthManager  # noqa: E402
from video_processor.auth.console import Console  # noqa: E402

WORKER = ROOT / "tests" / "support" / "token_worker.py"


def _sign_in(idp: IdentityProvider, token_path: Path) -> AuthConfig:
    client = idp.clients["public-app"]
    config = AuthConfig(
        service="bench",
        oauth_authorize_url=idp.authorization_endpoint,
        oauth_token_url=idp.token_endpoint,
        client_id=client.client_id,
        token_endpoint_auth_method="none",
        scopes=["openid", "offline_access", "read"],
        token_path=token_path,
        device_authorization_url=idp.device_authorization_endpoint,
    )
    console_output = io.StringIO()
    console = Console(stderr=console_output, open_browser=None)
    manager = OAuthManager(config, interactive=True, device=True, console=console)

    def approve() -> None:
        while not (
            match := re.search(r"enter the code:\s+(\S+)", console_output.getvalue())
        ):
            time.sleep(0.05)
        idp.approve_device(match.group(1))

    threading.Thread(target=approve, daemon=True).start()
    result = manager.authenticate()
    if not result.success:
        raise SystemExit(f"sign-in failed: {result.error}")
    return config


def _round(config: AuthConfig, jobs: int, directory: Path) -> tuple[int, float]:
    """Expire the saved token, release ``jobs`` workers, and time them.

    Returns the number of distinct tokens the workers got and the seconds
    from the start signal until the last worker exited.
    """
    data = json.loads(config.resolved_token_path.read_text())
    data["expires_at"] = 1.0
    config.resolved_token_path.write_text(json.dumps(data))

    fields = {
        "service": config.service,
        "oauth_authorize_url": config.oauth_authorize_url,
        "oauth_token_url": config.oauth_token_url,
        "client_id": config.client_id,
        "token_endpoint_auth_method": "none",
        "token_path": str(config.resolved_token_path),
    }
    config_path = directory / "worker.json"
    config_path.write_text(json.dumps(fields))

    start = directory / f"start-{jobs}"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(config_path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(jobs)
    ]
    time.sleep(1.5)  # let every worker import and reach its wait loop

    started = time.perf_counter()
    start.touch()
    tokens = set()
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        tokens.add(json.loads(out.strip().splitlines()[-1])["access_token"])
    return len(tokens), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, IdentityProvider() as idp:
        idp.start(default_config())
        config = _sign_in(idp, Path(directory) / "bench_token.json")
        print("jobs  refresh requests  distinct tokens  seconds to last exit")
        for jobs in args.jobs:
            idp.reset_stats()
            distinct, seconds = _round(config, jobs, Path(directory))
            refreshes = idp.stats()["token_requests"].get("refresh_token", 0)
            print(f"{jobs:>4}  {refreshes:>16}  {distinct:>15}  {seconds:>20.2f}")


if __name__ == "__main__":
    main()
