"""``python -m tap_smartforms_emulator``: the emulator out of process.

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.emulator_http import (
    REPO,
)

# --------------------------------------------------------------------------- CLI


def test_cli_writes_config_when_ready_and_stops_on_sigterm(
    tmp_path: Path, session: requests.Session
) -> None:
    config_path = tmp_path / "config.json"
    counts_path = tmp_path / "counts.json"
    command = [
        sys.executable, "-m", "tap_smartforms_emulator", "--port", "0", "--forms", "2",
        "--responses", "7", "--seed", "7", "--write-config", str(config_path),
        "--write-truth", str(counts_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not config_path.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "emulator did not get ready"
            time.sleep(0.02)
        assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
        config = json.loads(config_path.read_text())
        assert set(config) == {"client_id", "client_secret", "oauth_token_url", "data_sources"}
        assert json.loads(counts_path.read_text())["responses"] == 14
        source = config["data_sources"][0]
        token = session.post(
            config["oauth_token_url"],
            json={
                "grant_type": "refresh_token",
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
                "refresh_token": source["refresh_token"],
            },
        ).json()["access_token"]
        reply = session.get(source["url"], headers={"Authorization": f"Bearer {token}"})
        assert len(reply.json()["responses"]) == 7
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert re.search(r"emulator listening on http://127\.0\.0\.1:\d+", stderr)
