"""Data sources synced side by side: one writer, valid Singer output, nothing lost."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import keys
from tests.emulator import FormSpec

STREAMS = ("forms", "questions", "responses", "answers", "attachments")


def test_data_sources_are_fetched_at_the_same_time(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=s) for s in range(4)])
    # Each data source's first request waits until all four are in flight: a tap
    # that fetched one data source after another would never get past it.
    everyone_in_flight = threading.Barrier(4, timeout=30)

    def wait_for_the_others(ds_id: str, offset: int, limit: int, number: int) -> None:
        if number == 1:
            everyone_in_flight.wait()

    emu.on_data_request(wait_for_the_others)
    run = run_tap(emu.tap_config(parallel_data_sources=4, page_size=10))
    assert run.returncode == 0, run.stderr
    assert emu.stats.callback_errors == []
    truth = emu.truth()
    for stream in STREAMS:
        assert sorted(keys(run.records(stream), stream)) == sorted(keys(truth[stream], stream))


def test_interleaved_output_stays_valid_singer(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=s) for s in range(5)], latency=0.01)
    run = run_tap(emu.tap_config(parallel_data_sources=3, page_size=7))
    assert run.returncode == 0, run.stderr
    schema_seen: set[str] = set()
    emitted: dict[str, list[str]] = {}  # data source -> updated_at of responses written
    for message in run.messages:
        if message["type"] == "SCHEMA":
            assert message["stream"] not in schema_seen, "SCHEMA sent twice"
            schema_seen.add(message["stream"])
        elif message["type"] == "RECORD":
            assert message["stream"] in schema_seen, "RECORD before its SCHEMA"
            if message["stream"] == "responses":
                record = message["record"]
                emitted.setdefault(record["data_source_id"], []).append(record["updated_at"])
        elif message["type"] == "STATE":
            _assert_state_covers_only_written(message["value"], emitted)
    assert set(emitted) == set(emu.data_source_ids)


def _assert_state_covers_only_written(state: dict[str, Any], emitted: dict[str, list[str]]):
    for partition in state["bookmarks"]["responses"].get("partitions", []):
        data_source_id = partition["context"]["data_source_id"]
        markers = partition.get("progress_markers", partition)
        value = markers.get("replication_key_value")
        if value is None or data_source_id not in emitted:
            continue
        assert value in emitted[data_source_id], "STATE ahead of the records written"
