"""Streams fed by the responses page loop, when responses itself is not selected, and
the SDK's per-stream record_count metrics for every stream."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from tap_smartforms_emulator import STREAMS, FormSpec
from tests.conftest import keys, responses_bookmarks

METRIC_MARK = "METRIC: "


def _catalog_selecting(run_tap: Any, config: dict[str, Any], *selected: str) -> Any:
    catalog = json.loads(run_tap(config, args=("--discover",)).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if not metadata["breadcrumb"]:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return catalog


def _record_counts(stderr: str) -> Counter[str]:
    """The records counted per stream by the SDK's record_count METRIC lines."""
    counts: Counter[str] = Counter()
    for line in stderr.splitlines():
        if METRIC_MARK in line:
            point = json.loads(line.split(METRIC_MARK, 1)[1])
            if point["metric"] == "record_count":
                counts[point["tags"]["stream"]] += point["value"]
    return counts


def test_answers_alone_keep_an_incremental_bookmark_and_the_second_run_reads_only_changes(
    emulator, run_tap
):
    emu = emulator([FormSpec(responses=70, seed=31), FormSpec(responses=40, seed=32)])
    config = emu.tap_config(page_size=20)
    catalog = _catalog_selecting(run_tap, config, "answers")

    first = run_tap(config, catalog=catalog)
    first_requests = emu.stats.data_requests

    assert first.returncode == 0, first.stderr
    assert {m["stream"] for m in first.messages if m["type"] == "RECORD"} == {"answers"}
    assert set(keys(first.records("answers"), "answers")) == set(
        keys(emu.truth()["answers"], "answers")
    )
    bookmarks = responses_bookmarks(first.states[-1])
    assert set(bookmarks) == set(emu.data_source_ids)

    ds_id = emu.data_source_ids[0]
    changed = set(emu.response_ids(ds_id)[5:50:9])
    for response_id in changed:
        emu.update_response(ds_id, response_id)
    second = run_tap(config, catalog=catalog, state=first.states[-1])

    assert second.returncode == 0, second.stderr
    # The server was asked only for what changed (updatedFrom): fewer pages ...
    assert emu.stats.data_requests - first_requests < first_requests / 2
    # ... and the tap wrote exactly the answers of the responses updated since then.
    expected = set()
    for data_source_id, since in bookmarks.items():
        changed_answers = [
            answer
            for answer in emu.truth(updated_since=datetime.fromisoformat(since))["answers"]
            if answer["data_source_id"] == data_source_id
        ]
        expected |= set(keys(changed_answers, "answers"))
    assert set(keys(second.records("answers"), "answers")) == expected
    # Every changed response that has answers (a messy response may have none).
    answered = {answer["response_id"] for answer in emu.truth()["answers"]}
    assert changed & answered
    assert changed & answered <= {answer["response_id"] for answer in second.records("answers")}
    assert len(second.records("answers")) < len(first.records("answers")) / 3


def test_forms_alone_read_one_page_and_leave_the_bookmark_alone(emulator, run_tap):
    # Only the first page is read then: its newest response says nothing of later pages.
    emu = emulator([FormSpec(responses=70, seed=33)])
    config = emu.tap_config(page_size=20)

    run = run_tap(config, catalog=_catalog_selecting(run_tap, config, "forms"))

    assert run.returncode == 0, run.stderr
    assert len(run.records("forms")) == 1
    assert responses_bookmarks(run.states[-1]) == {}


def test_record_count_metrics_count_the_records_of_every_stream(emulator, run_tap):
    emu = emulator([FormSpec(responses=60, seed=34), FormSpec(responses=35, seed=35)])

    run = run_tap(emu.tap_config(page_size=25))

    assert run.returncode == 0, run.stderr
    counted = _record_counts(run.stderr)
    for stream in STREAMS:
        assert run.records(stream), stream
        assert counted[stream] == len(run.records(stream)), stream


def test_record_count_metrics_count_only_the_selected_streams(emulator, run_tap):
    emu = emulator([FormSpec(responses=60, seed=36)])
    config = emu.tap_config(page_size=25)

    run = run_tap(config, catalog=_catalog_selecting(run_tap, config, "attachments"))

    assert run.returncode == 0, run.stderr
    assert set(_record_counts(run.stderr)) == {"attachments"}
    assert _record_counts(run.stderr)["attachments"] == len(run.records("attachments")) > 0


def test_the_sdk_unsorted_stream_warning_is_not_logged_for_each_data_source(emulator, run_tap):
    emu = emulator([FormSpec(responses=20, seed=s) for s in (37, 38, 39)])

    run = run_tap(emu.tap_config())

    assert run.returncode == 0, run.stderr
    assert run.records("responses")
    assert "assumed to be unsorted" not in run.stderr
