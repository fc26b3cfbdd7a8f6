"""Ending a run never costs a token chain, and a token is never spent in vain
(issue 11 items 1, 2 and 5), each shown with the real tap process and the emulator.

- A run stopped at a random moment (SIGTERM, SIGINT, or its reader closing stdout)
  while tokens rotate every second: the next run, after the reuse window, still
  refreshes without a stale use or a revoked chain.
- A token store that cannot be written fails its data source before the token
  endpoint is asked anything.
- With the token endpoint down, every data source fails within about one retry
  patience, not one patience after another.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms_emulator import FormSpec
from tests.conftest import TAP_TIMEOUT_SECONDS, assert_no_secrets, config_secrets
from tests.test_tokens import finish, response_ids, start_tap, truth_ids

REUSE_WINDOW_SECONDS = 600.0
WAITED_FOR_REFRESH = "token refresh(es) in flight to be saved before stopping"


def leftover_temp_files(store: Path) -> list[str]:
    return sorted(p.name for p in store.parent.iterdir() if p.name.endswith(".tmp"))


def wait_for_line(log: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TAP_TIMEOUT_SECONDS
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.02)


def stop_at(process: subprocess.Popen, how: str) -> None:
    if how == "close stdout":
        assert process.stdout is not None
        process.stdout.close()  # the next write fails with EPIPE, as when a target dies
    else:
        process.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)


@pytest.mark.slow  # 15 interrupted runs and a final one: about 40 s
def test_a_run_stopped_at_any_moment_never_burns_a_token_chain(emulator, tmp_path):
    # Access tokens live 1 s and each token reply arrives 0.4 s after the server
    # rotated the chain, so three data sources keep a refresh in flight most of the
    # time: a stop lands inside that window in many trials (asserted below).
    skipped = [0.0]
    emu = emulator(
        [FormSpec(responses=400, seed=60 + n) for n in range(3)],
        access_token_ttl=1.0,
        token_latency=0.4,
        latency=0.03,
        rate_limit_per_minute=None,
        clock=lambda: time.monotonic() + skipped[0],
    )
    store = tmp_path / "tokens.json"
    config = emu.tap_config(page_size=5, token_store_path=str(store))
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    moments = random.Random(20240611)
    ways = ["SIGTERM", "SIGINT", "close stdout"]
    waited = 0
    for trial in range(15):
        how = ways[trial % len(ways)]
        log = tmp_path / f"stderr-{trial}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
                stdout=subprocess.PIPE if how == "close stdout" else subprocess.DEVNULL,
                stderr=stderr,
            )
            # Stop at a random moment once the sync runs (its first token arrived),
            # whatever the start-up took on a busy machine.
            wait_for_line(log, "access token refreshed", process)
            time.sleep(moments.uniform(0.0, 1.2))
            stop_at(process, how)
            process.wait(timeout=TAP_TIMEOUT_SECONDS)
        text = log.read_text()
        assert_no_secrets([text], config_secrets(config))
        assert "Traceback" not in text or how == "close stdout", text[-2000:]
        assert "| ERROR" not in text or how == "close stdout", text[-2000:]
        waited += WAITED_FOR_REFRESH in text
        # Past the reuse window: a token this run spent but did not save now revokes
        # its chain at the next refresh (of the next trial, or the final run).
        skipped[0] += REUSE_WINDOW_SECONDS + 1
        stats = emu.stats
        context = f"trial {trial} ({how}): {text[-1500:]}"
        assert stats.revoked_chains == 0, context
        assert stats.stale_refresh_uses == 0, context
        assert stats.invalid_grants == 0, context
        assert leftover_temp_files(store) == [], context

    final = finish(start_tap(config, tmp_path, "final"), config)

    assert final.returncode == 0, final.stderr[-3000:]
    assert response_ids(final) == truth_ids(emu)
    stats = emu.stats
    assert stats.revoked_chains == 0
    assert stats.stale_refresh_uses == 0
    assert stats.invalid_grants == 0
    assert leftover_temp_files(store) == []
    # The stops did land while a rotated token was on its way, or this proved nothing.
    assert waited >= 3, f"only {waited} of 15 stops came during a refresh"


@pytest.mark.parametrize(
    ("blocker", "expected"),
    [
        # Tests run as root, for whom a read-only mode does not stop writes: the store
        # is put where no one can write, a path under a regular file (ENOTDIR) ...
        ("under a file", "has no usable folder"),
        # ... or a path that is a folder: the lock file and a temporary file can be
        # made next to it, but the rotated token could never replace it.
        ("a folder", "cannot be written: it is a folder"),
    ],
)
def test_an_unwritable_token_store_fails_before_a_token_is_spent(
    emulator, run_tap, tmp_path, blocker: str, expected: str
):
    emu = emulator([FormSpec(responses=5, seed=70)])
    (ds,) = emu.data_source_ids
    if blocker == "under a file":
        (tmp_path / "not-a-folder").write_text("a file\n")
        store = tmp_path / "not-a-folder" / "tokens.json"
    else:
        store = tmp_path / "tokens.json"
        store.mkdir()

    run = run_tap(emu.tap_config(token_store_path=str(store)))

    assert run.returncode == 1
    (line,) = [line for line in run.error_lines if f"data source {ds}:" in line]
    assert expected in line
    assert str(store) in line
    assert "token_store_path" in line  # what to fix
    assert emu.stats.token_requests == 0  # the configured token is still unspent
    assert "Traceback" not in run.stderr


def test_with_the_token_endpoint_down_all_data_sources_fail_within_one_patience(emulator, tmp_path):
    patience = 4
    emu = emulator([FormSpec(responses=5, seed=80 + n) for n in range(10)])
    emu.queue_token_fault("503", count=10_000)
    config = emu.tap_config(
        token_store_path=str(tmp_path / "tokens.json"),
        max_retry_seconds=patience,
        parallel_data_sources=10,
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))

    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=False,
    )
    took = time.monotonic() - started

    assert completed.returncode == 1
    assert_no_secrets([completed.stdout, completed.stderr], config_secrets(config))
    errors = [line for line in completed.stderr.splitlines() if "| ERROR" in line]
    for ds in emu.data_source_ids:
        (line,) = [line for line in errors if f"data source {ds}:" in line]
        assert "could not refresh the access token: token endpoint answered HTTP 503" in line
        summary = _summary_line(completed.stderr, ds)
        assert _token_retries(summary) >= 2, summary
    # One after another this would take 10 patiences (40 s); side by side, about
    # one, plus the process's start-up (1-2 s).
    assert took < 3 * patience, f"{took:.1f} s for 10 data sources, patience {patience} s"
    assert emu.stats.refreshes == 0


def _summary_line(stderr: str, ds: str) -> str:
    (line,) = [
        line
        for line in stderr.splitlines()
        if f"  data source {ds}: " in line and "retries" in line
    ]
    return line


def _token_retries(summary: str) -> int:
    words: list[Any] = summary.split(" token retries", 1)[0].rsplit(" ", 1)
    return int(words[-1])
