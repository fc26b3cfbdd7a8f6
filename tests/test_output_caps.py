"""BATCH and ACTIVATE_VERSION messages, from the real tap process against the emulator.

What a target then does with them is in tests/test_meltano_output_caps.py.
"""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from tap_smartforms_emulator import STREAMS, FormSpec
from tests.conftest import by_key

pytestmark = pytest.mark.e2e

REPLICATED_WHOLE = ("responses", "answers", "attachments")


def batch_config(root: Path, encoding: dict[str, str]) -> dict[str, Any]:
    return {"encoding": encoding, "storage": {"root": root.as_uri()}}


def batch_records(run: Any) -> dict[str, list[dict[str, Any]]]:
    """Every stream's records, read back from the files its BATCH messages name."""
    records: dict[str, list[dict[str, Any]]] = {}
    for message in run.messages:
        if message["type"] != "BATCH":
            continue
        for url in message["manifest"]:
            path = Path(urlsplit(url).path)
            if message["encoding"]["format"] == "parquet":
                records.setdefault(message["stream"], []).extend(pq.read_table(path).to_pylist())
            else:
                with gzip.open(path, "rt", encoding="utf-8") as lines:
                    records.setdefault(message["stream"], []).extend(json.loads(x) for x in lines)
    return records


def message_types(run: Any) -> list[str]:
    return [message["type"] for message in run.messages]


@pytest.mark.parametrize(
    "encoding",
    [{"format": "jsonl", "compression": "gzip"}, {"format": "parquet"}],
    ids=["jsonl-gzip", "parquet"],
)
def test_batch_files_hold_what_record_messages_would(emulator, run_tap, tmp_path, encoding):
    emu = emulator([FormSpec(responses=90, seed=21), FormSpec(responses=40, seed=22)])
    plain = run_tap(emu.tap_config(page_size=25))
    batched = run_tap(
        emu.tap_config(page_size=25, batch_config=batch_config(tmp_path / "b", encoding))
    )

    assert plain.returncode == batched.returncode == 0, batched.stderr
    assert "RECORD" not in message_types(batched)
    loaded = batch_records(batched)
    for stream in STREAMS:
        expected = plain.records(stream)
        assert expected, stream
        assert by_key(loaded[stream], stream) == by_key(expected, stream), stream


def test_batch_state_only_follows_the_batches_it_covers(emulator, run_tap, tmp_path):
    # batch_size 50: files are cut during the run, not only at its end.
    emu = emulator([FormSpec(responses=120, seed=23)])
    config = batch_config(tmp_path / "b", {"format": "jsonl", "compression": "gzip"})
    run = run_tap(emu.tap_config(page_size=20, batch_config={**config, "batch_size": 50}))

    assert run.returncode == 0, run.stderr
    types = message_types(run)
    assert types.count("BATCH") > len(STREAMS), "several batches during the run"
    responses_seen: set[str] = set()
    files_read = 0
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == "responses":
            for url in message["manifest"]:
                with gzip.open(Path(urlsplit(url).path), "rt", encoding="utf-8") as lines:
                    responses_seen |= {json.loads(line)["updated_at"] for line in lines}
                files_read += 1
        if message["type"] == "STATE":
            partitions = message["value"]["bookmarks"]["responses"].get("partitions", [])
            for partition in partitions:
                marker = partition.get("progress_markers", {}).get("replication_key_value")
                newest = partition.get("replication_key_value")
                for value in (marker, newest):
                    # A bookmark names a response already in a batch file.
                    assert value is None or value in responses_seen
    assert files_read > 1


def test_batch_applies_stream_maps_and_aliases(emulator, run_tap, tmp_path):
    emu = emulator([FormSpec(responses=30, seed=24)])
    maps = {
        "answers": {"label": "__NULL__", "question_upper": "question_id.upper()"},
        "forms": {"__alias__": "smartforms_forms"},
    }
    config = batch_config(tmp_path / "b", {"format": "jsonl", "compression": "gzip"})
    run = run_tap(emu.tap_config(batch_config=config, stream_maps=maps))

    assert run.returncode == 0, run.stderr
    batches = [m for m in run.messages if m["type"] == "BATCH"]
    assert {m["stream"] for m in batches} == {
        "smartforms_forms",
        "questions",
        "responses",
        "answers",
        "attachments",
    }
    answers = batch_records(run)["answers"]
    assert answers
    assert all("label" not in a for a in answers)
    assert all(a["question_upper"] == a["question_id"].upper() for a in answers)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"emit_activate_version_messages": True}, "cannot be combined"),
        ({"full_refresh_responses": True}, "cannot be combined"),
        ({"batch_config": {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///x"}}},
         "must be gzip for jsonl"),
    ],
)  # fmt: skip
def test_batch_settings_the_sdk_cannot_honour_are_refused(
    emulator, run_tap, tmp_path, extra, named
):
    emu = emulator([FormSpec(responses=5, seed=25)])
    config = batch_config(tmp_path / "b", {"format": "jsonl", "compression": "gzip"})
    run = run_tap(emu.tap_config(**{"batch_config": config, **extra}))

    assert run.returncode != 0
    assert named in run.stderr
    assert not [m for m in run.messages if m["type"] in ("RECORD", "BATCH")]


# ------------------------------------------------------------------ ACTIVATE_VERSION


def versions_by_stream(run: Any) -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {stream: set() for stream in STREAMS}
    for message in run.messages:
        if message["type"] == "RECORD":
            found[message["stream"]].add(message.get("version"))
    return found


def activations(run: Any) -> dict[str, int]:
    return {m["stream"]: m["version"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}


def test_activate_version_closes_forms_and_questions_after_their_records(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=26), FormSpec(responses=20, seed=27)])
    run = run_tap(emu.tap_config(page_size=10, emit_activate_version_messages=True))

    assert run.returncode == 0, run.stderr
    activated = activations(run)
    assert set(activated) == {"forms", "questions"}
    versions = versions_by_stream(run)
    for stream in ("forms", "questions"):
        assert versions[stream] == {activated[stream]}, stream
        last_record = max(
            i for i, m in enumerate(run.messages) if m["type"] == "RECORD" and m["stream"] == stream
        )
        activation = next(
            i
            for i, m in enumerate(run.messages)
            if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
        )
        assert activation > last_record, stream
    for stream in REPLICATED_WHOLE:
        assert versions[stream] == {None}, f"{stream}: incremental, no version"


def test_no_activate_version_without_the_setting(emulator, run_tap):
    run = run_tap(emulator([FormSpec(responses=10, seed=28)]).tap_config())

    assert run.returncode == 0, run.stderr
    assert activations(run) == {}
    assert all(version == {None} for version in versions_by_stream(run).values())


def test_reconcile_reads_every_response_again_as_a_new_version(emulator, run_tap):
    emu = emulator([FormSpec(responses=50, seed=29)])
    first = run_tap(emu.tap_config(page_size=20))
    assert first.returncode == 0, first.stderr

    run = run_tap(emu.tap_config(page_size=20, full_refresh_responses=True), state=first.states[-1])

    assert run.returncode == 0, run.stderr
    activated = activations(run)
    assert set(activated) == set(REPLICATED_WHOLE)
    truth = emu.truth()
    for stream in REPLICATED_WHOLE:
        assert by_key(run.records(stream), stream) == by_key(truth[stream], stream), stream
        assert versions_by_stream(run)[stream] == {activated[stream]}
    state = run.states[-1]["bookmarks"]["responses"]
    assert datetime.datetime.fromisoformat(state["last_reconciled_at"])


def test_reconcile_with_a_failed_data_source_sends_no_activate_version(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=30), FormSpec(responses=30, seed=31)])
    emu.set_data_source_failure(emu.data_source_ids[1], "forbidden")

    run = run_tap(emu.tap_config(emit_activate_version_messages=True, full_refresh_responses=True))

    assert run.returncode == 1
    assert run.records("responses"), "the healthy data source still synced"
    assert activations(run) == {}
    assert "no ACTIVATE_VERSION for forms, questions, responses, answers, attachments" in (
        run.stderr
    )
    assert emu.data_source_ids[1] in run.stderr
    assert "last_reconciled_at" not in run.states[-1]["bookmarks"]["responses"]


def test_reconcile_every_days_reconciles_when_the_last_one_is_that_old(emulator, run_tap):
    emu = emulator([FormSpec(responses=20, seed=32)])
    config = emu.tap_config(reconcile_every_days=7)

    first = run_tap(config)  # no reconcile in the state yet: one is due
    assert first.returncode == 0, first.stderr
    assert set(activations(first)) == set(REPLICATED_WHOLE)
    state = first.states[-1]

    recent = run_tap(config, state=state)
    assert recent.returncode == 0, recent.stderr
    assert activations(recent) == {}
    assert len(recent.records("responses")) < 20, "incremental: from the bookmark on"

    eight_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)
    state["bookmarks"]["responses"]["last_reconciled_at"] = eight_days_ago.isoformat()
    due = run_tap(config, state=state)
    assert due.returncode == 0, due.stderr
    assert set(activations(due)) == set(REPLICATED_WHOLE)
    assert len(due.records("responses")) == 20
