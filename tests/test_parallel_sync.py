"""Data sources synced side by side: one writer, valid Singer output, nothing lost."""

from __future__ import annotations

import threading
from typing import Any

from tap_smartforms_emulator import FormSpec, RequestLogEntry
from tests.conftest import keys

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
    # From the emulator's log, not the barrier alone: some moment lies between every
    # data source's first and last request (one after another, none would).
    spans = request_spans(emu.stats.request_log)
    assert set(spans) == set(emu.data_source_ids)
    latest_first = max(first for first, _ in spans.values())
    earliest_last = min(last for _, last in spans.values())
    assert latest_first < earliest_last, f"data sources fetched one after another: {spans}"
    assert emu.stats.callback_errors == []
    truth = emu.truth()
    for stream in STREAMS:
        assert sorted(keys(run.records(stream), stream)) == sorted(keys(truth[stream], stream))


def request_spans(log: list[RequestLogEntry]) -> dict[str, tuple[float, float]]:
    """Per data source: when its first and its last data request arrived."""
    spans: dict[str, tuple[float, float]] = {}
    for entry in log:
        first, last = spans.get(entry.ds_id, (entry.time, entry.time))
        spans[entry.ds_id] = (min(first, entry.time), max(last, entry.time))
    return spans


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
    # The final bookmarks are the emulator's newest updated_at per data source.
    final = bookmarks(run.states[-1])
    for data_source_id in emu.data_source_ids:
        newest = max(
            record["updated_at"]
            for record in emu.truth()["responses"]
            if record["data_source_id"] == data_source_id
        )
        assert final[data_source_id] == [newest]


def bookmarks(state: dict[str, Any]) -> dict[str, list[str]]:
    """Every bookmark value a STATE holds per data source: the finished one and the
    progress marker of one still running."""
    values: dict[str, list[str]] = {}
    for partition in state["bookmarks"]["responses"].get("partitions", []):
        data_source_id = partition["context"]["data_source_id"]
        for holder in (partition, partition.get("progress_markers", {})):
            if holder.get("replication_key_value") is not None:
                values.setdefault(data_source_id, []).append(holder["replication_key_value"])
    return values


def _assert_state_covers_only_written(state: dict[str, Any], emitted: dict[str, list[str]]):
    # A data source with no records out yet must have no bookmark yet either.
    for data_source_id, values in bookmarks(state).items():
        for value in values:
            assert value in emitted.get(data_source_id, []), "STATE ahead of the records written"
