"""Never lose a response: faults, rate limits, edits during a sync, kill -9, summaries.

Each test compares the primary keys (and, where the data held still, the values)
of what the tap emitted with the emulator's ground truth.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms_emulator import Emulator, FormSpec
from tests.conftest import keys

STREAMS = ("forms", "questions", "responses", "answers", "attachments")


def _emitted_ids(records: list[dict[str, Any]]) -> set[str]:
    return {record["id"] for record in records}


def _assert_everything_delivered(run: Any, emu: Emulator) -> None:
    truth = emu.truth()
    for stream in STREAMS:
        assert set(keys(run.records(stream), stream)) == set(keys(truth[stream], stream)), stream


class EditsDuringSync:
    """Deletes, inserts and updates responses while the tap pages (seeded)."""

    def __init__(self, emu: Emulator, seed: int, edits_per_request: int = 2) -> None:
        self.emu = emu
        self.rng = random.Random(seed)
        self.edits_per_request = edits_per_request
        self.initial = {ds: set(emu.response_ids(ds)) for ds in emu.data_source_ids}
        self.updated: set[str] = set()

    def __call__(self, ds_id: str, offset: int, limit: int, number: int) -> None:
        for _ in range(self.edits_per_request):
            ids = self.emu.response_ids(ds_id)
            roll = self.rng.random()
            if roll < 0.4 and ids:
                # Before the cursor: the deletion that shifts offset paging.
                self.emu.delete_response(ds_id, self.rng.choice(ids[: max(1, offset)]))
            elif roll < 0.7:
                self.emu.insert_response(ds_id)
            elif ids:
                chosen = self.rng.choice(ids)
                self.emu.update_response(ds_id, chosen)
                self.updated.add(chosen)

    def survivors(self) -> set[str]:
        """Responses that existed for the whole sync."""
        return {
            response_id
            for ds in self.emu.data_source_ids
            for response_id in self.initial[ds] & set(self.emu.response_ids(ds))
        }


def test_faults_size_limit_and_tight_rate_limit_together_lose_nothing(emulator, run_tap):
    emu = emulator(
        [FormSpec(responses=70, seed=s) for s in (31, 32)],
        rate_limit_per_minute=40,
        max_body_bytes=60_000,
    )
    first, second = emu.data_source_ids
    for kind in ("502", "truncated"):
        emu.queue_fault(first, kind)
    for kind in ("503", "reset", "429"):
        emu.queue_fault(second, kind)

    run = run_tap(emu.tap_config(page_size=40, requests_per_minute=40))

    assert run.returncode == 0, run.stderr
    _assert_everything_delivered(run, emu)
    stats = emu.stats
    assert stats.status_counts.get(413, 0) >= 1, "the size limit was never hit"
    assert stats.rate_limited == 0, "our own pacing let the rate limiter answer 429"
    assert all(most <= 40 for most in stats.max_requests_in_any_60s_window_by_ds.values())


def test_inserts_updates_and_deletes_while_paging_miss_no_surviving_response(emulator, run_tap):
    # No rate limit here: every deletion before the cursor costs a re-read, and
    # pacing is another test's subject.
    emu = emulator([FormSpec(responses=90, seed=s) for s in (41, 42)], rate_limit_per_minute=None)
    edits = EditsDuringSync(emu, seed=4, edits_per_request=1)
    emu.on_data_request(edits)

    run = run_tap(emu.tap_config(page_size=7, requests_per_minute=6000))
    emu.on_data_request(None)

    assert run.returncode == 0, run.stderr
    assert emu.stats.callback_errors == []
    survivors = edits.survivors()
    assert survivors <= _emitted_ids(run.records("responses"))
    final = {record["id"]: record for record in emu.truth()["responses"]}
    for record in run.records("responses"):
        if record["id"] in survivors and record["id"] not in edits.updated:
            assert record == final[record["id"]]


def test_a_tap_killed_mid_sync_resumes_from_its_last_state_without_loss(
    emulator, run_tap, tmp_path: Path
):
    emu = emulator([FormSpec(responses=150, seed=s) for s in (51, 52, 53)], latency=0.02)
    config = emu.tap_config(page_size=10, parallel_data_sources=2)
    config["token_store_path"] = str(tmp_path / "tokens.json")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))

    killed = subprocess.Popen(
        [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert killed.stdout is not None
    first_messages: list[dict[str, Any]] = []
    states_seen = 0
    for line in killed.stdout:
        message = json.loads(line)
        first_messages.append(message)
        states_seen += message["type"] == "STATE"
        if states_seen == 6:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait()
    killed.stdout.close()
    assert states_seen == 6, "the sync ended before it could be interrupted"
    last_state = [m["value"] for m in first_messages if m["type"] == "STATE"][-1]

    resumed = run_tap(config, state=last_state)

    assert resumed.returncode == 0, resumed.stderr
    before_kill = [
        m["record"] for m in first_messages if m["type"] == "RECORD" and m["stream"] == "responses"
    ]
    delivered = _emitted_ids(before_kill) | _emitted_ids(resumed.records("responses"))
    truth = _emitted_ids(emu.truth()["responses"])
    assert delivered == truth
    # At-least-once with a bounded cost: the resumed run re-reads at most one full
    # sync, never more.
    assert len(resumed.records("responses")) <= len(truth)


def _random_case(seed: int) -> tuple[list[FormSpec], dict[str, Any]]:
    rng = random.Random(seed)
    forms = [
        FormSpec(responses=rng.randint(0, 45), seed=rng.randint(1, 10_000))
        for _ in range(rng.randint(1, 3))
    ]
    settings = {
        "page_size": rng.choice([1, 2, 3, 5, 8, 13, 50]),
        "parallel_data_sources": 2,
        "requests_per_minute": 6000,
    }
    return forms, settings


@pytest.mark.parametrize("seed", range(50))
def test_random_faults_edits_and_page_sizes_lose_nothing(emulator, run_tap, seed: int):
    forms, settings = _random_case(seed)
    rng = random.Random(seed * 7919)
    emu = emulator(forms, rate_limit_per_minute=None)
    # A 413 for a page of one response would rightly end its data source.
    faults = ["503", "truncated", "reset", "429"] + (["413"] if settings["page_size"] > 1 else [])
    for ds_id in emu.data_source_ids:
        if rng.random() < 0.5:
            emu.queue_fault(ds_id, rng.choice(faults))
    edits = EditsDuringSync(emu, seed=seed, edits_per_request=rng.randint(0, 2))
    emu.on_data_request(edits)

    run = run_tap(emu.tap_config(**settings))
    emu.on_data_request(None)

    assert run.returncode == 0, run.stderr
    assert emu.stats.callback_errors == []
    assert edits.survivors() <= _emitted_ids(run.records("responses"))


def test_summary_names_every_failed_data_source_and_why(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=s) for s in (61, 62, 63)])
    revoked, forbidden, healthy = emu.data_source_ids
    emu.revoke_chain(revoked)
    emu.set_data_source_failure(forbidden, "forbidden")

    run = run_tap(emu.tap_config(page_size=10))

    assert run.returncode == 1
    summary = run.stderr[run.stderr.index("Summary: 3 data sources") :]
    assert "1 synced, 2 failed" in summary
    lines = {
        ds: next(line for line in summary.splitlines() if ds in line)
        for ds in (revoked, forbidden, healthy)
    }
    assert "FAILED" in lines[revoked]
    assert "invalid_grant" in lines[revoked]
    assert "FAILED" in lines[forbidden]
    assert "403" in lines[forbidden]
    assert lines[healthy].endswith("ok")
    assert "30 responses" in lines[healthy]
    healthy_truth = {r["id"] for r in emu.truth()["responses"] if r["data_source_id"] == healthy}
    assert _emitted_ids(run.records("responses")) == healthy_truth


def test_progress_is_logged_per_data_source_on_stderr_only(emulator, run_tap):
    emu = emulator([FormSpec(responses=25, seed=71)])
    run = run_tap(emu.tap_config(page_size=10))
    (ds_id,) = emu.data_source_ids
    assert run.returncode == 0, run.stderr
    assert f"data source {ds_id}: 3 pages, 25 of 25 responses" in run.stderr
    assert all(
        json.loads(line)["type"] in {"SCHEMA", "RECORD", "STATE"}
        for line in run.stdout.splitlines()
    )
