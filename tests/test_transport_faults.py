"""Replies that are broken on the wire: the real tap process against the emulator.

Each fault once: the run completes with every response, exit 0, and a warning that
names the problem. The fault for good: that data source fails with one ERROR line
naming it and the problem (no traceback), keeping the page it had already
written, and the other data source completes. Deadlines and retry patience are
the documented settings, small, so no test waits for long.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tap_smartforms_emulator import Emulator, FormSpec
from tests.conftest import keys

STREAMS = ("forms", "questions", "responses", "answers", "attachments")
PAGE_SIZE = 10
# Small enough for quick tests, as a user on a fast link might set them.
SETTINGS = {"page_size": PAGE_SIZE, "request_timeout_seconds": 2, "max_retry_seconds": 4}

# What the warning (fault once) and the error (fault for good) must say.
PROBLEMS = {
    "html": "the API answered with an HTML page (Content-Type text/html; charset=utf-8)",
    "gzip_corrupt": "the reply body could not be decompressed",
    "gzip_bomb": "exceeded 33554432 bytes once decoded",
    "drip": "no complete reply within 2 s",
    "retry_after_absurd": "rate limited (HTTP 429, Retry-After 1000000000)",
    "retry_after_inf": "rate limited (HTTP 429, Retry-After inf)",
}


def _emulator(emulator: Any) -> Emulator:
    emu: Emulator = emulator([FormSpec(responses=25, seed=s) for s in (81, 82)])
    return emu


def _ids(records: list[dict[str, Any]], ds_id: str) -> set[str]:
    return {record["id"] for record in records if record["data_source_id"] == ds_id}


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_a_broken_reply_once_is_retried_and_nothing_is_lost(emulator, run_tap, kind: str):
    emu = _emulator(emulator)
    first, _ = emu.data_source_ids
    emu.queue_fault(first, kind)

    started = time.monotonic()
    run = run_tap(emu.tap_config(**SETTINGS))
    elapsed = time.monotonic() - started

    assert run.returncode == 0, run.stderr
    truth = emu.truth()
    for stream in STREAMS:
        assert set(keys(run.records(stream), stream)) == set(keys(truth[stream], stream)), stream
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line]
    assert any(first in line and PROBLEMS[kind] in line for line in warnings), run.stderr
    assert run.error_lines == []
    # A Retry-After of years (or infinity) waits no longer than the retry patience.
    assert elapsed < 15


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_a_broken_reply_for_good_fails_only_its_data_source_in_one_line(
    emulator, run_tap, kind: str
):
    emu = _emulator(emulator)
    broken, healthy = emu.data_source_ids

    def break_after_the_first_page(ds_id: str, offset: int, limit: int, number: int) -> None:
        if ds_id == broken and number == 2:
            # Called before the request is served: request 2 already gets the fault.
            emu.queue_fault(broken, kind, count=1000)

    emu.on_data_request(break_after_the_first_page)

    started = time.monotonic()
    run = run_tap(emu.tap_config(**SETTINGS))
    elapsed = time.monotonic() - started
    emu.on_data_request(None)

    assert run.returncode == 1
    assert emu.stats.callback_errors == []
    (error,) = [line for line in run.error_lines if broken in line]
    assert f"data source {broken}: " in error
    assert PROBLEMS[kind] in error
    assert "Traceback" not in run.stderr
    assert not any(healthy in line for line in run.error_lines)
    responses = run.records("responses")
    truth = emu.truth()["responses"]
    assert _ids(responses, healthy) == _ids(truth, healthy)
    # The first page of the broken data source was written before the trouble began.
    first_page = set(emu.response_ids(broken)[:PAGE_SIZE])
    assert first_page <= _ids(responses, broken)
    assert elapsed < 15
