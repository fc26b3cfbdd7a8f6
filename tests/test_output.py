"""The fast record path (output.py) writes what the SDK's own path would write."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from jsonschema import Draft7Validator
from singer_sdk.helpers._typing import conform_record_data_types  # what Stream uses
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_smartforms_emulator import FormSpec
from tests.conftest import keys

STREAMS = ("forms", "questions", "responses", "answers", "attachments")


def _without_extraction_time(run: Any, stream: str) -> list[dict[str, Any]]:
    return [
        {key: value for key, value in message.items() if key != "time_extracted"}
        for message in run.messages
        if message["type"] == "RECORD" and message["stream"] == stream
    ]


def _catalog_without(run_tap: Any, config: dict[str, Any], stream: str, field: str) -> Any:
    catalog = json.loads(run_tap(config, args=("--discover",)).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if entry["tap_stream_id"] == stream and metadata["breadcrumb"] == [
                "properties",
                field,
            ]:
                metadata["metadata"]["selected"] = False
            elif not metadata["breadcrumb"]:
                metadata["metadata"]["selected"] = True
    return catalog


def test_records_leave_the_tap_already_in_their_schema_types(emulator, run_tap):
    emu = emulator([FormSpec(responses=120, seed=s) for s in (3, 4)])
    run = run_tap(emu.tap_config())
    assert run.returncode == 0, run.stderr
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    for stream in STREAMS:
        assert run.records(stream), f"{stream}: no records"
        validator = Draft7Validator(schemas[stream])
        for record in run.records(stream):
            validator.validate(record)
            conformed = conform_record_data_types(
                stream_name=stream,
                record=dict(record),
                schema=schemas[stream],
                level=TypeConformanceLevel.RECURSIVE,
                logger=logging.getLogger("conformance"),
            )
            assert conformed == record, f"{stream}: type conformance would change a record"


def test_fast_path_writes_the_same_records_as_the_sdk_path(emulator, run_tap):
    emu = emulator([FormSpec(responses=80, seed=5)])
    fast = run_tap(emu.tap_config())
    # An aliasing stream map takes every stream off the fast path, onto the SDK's.
    aliases = {stream: {"__alias__": stream} for stream in STREAMS}
    sdk = run_tap(emu.tap_config(stream_maps=aliases))
    assert fast.returncode == sdk.returncode == 0, fast.stderr + sdk.stderr
    for stream in STREAMS:
        assert _without_extraction_time(fast, stream) == _without_extraction_time(sdk, stream)
        assert fast.records(stream), stream


def test_every_record_message_carries_its_extraction_time(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=2)])
    run = run_tap(emu.tap_config())
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert records
    for message in records:
        extracted = datetime.datetime.fromisoformat(message["time_extracted"])
        assert extracted.utcoffset() == datetime.timedelta(0)


def test_deselected_fields_are_left_out(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=6)])
    config = emu.tap_config()
    run = run_tap(config, catalog=_catalog_without(run_tap, config, "answers", "value_text"))
    answers = run.records("answers")
    assert answers
    assert all("value_text" not in answer for answer in answers)
    assert all("value" in answer for answer in answers)


def test_stream_maps_still_transform_records(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=7)])
    maps = {"answers": {"label": "__NULL__", "question_upper": "question_id.upper()"}}
    run = run_tap(emu.tap_config(stream_maps=maps))
    answers = run.records("answers")
    assert answers
    assert all("label" not in answer for answer in answers)
    assert all(answer["question_upper"] == answer["question_id"].upper() for answer in answers)
    assert len(set(keys(answers, "answers"))) == len(answers)
