"""The tap's output loaded by MeltanoLabs target-snowflake into a local fake Snowflake.

fakesnow (an in-process patch of snowflake.connector over DuckDB) plus a test-only
stage shim (tests/snowflake/fake_snowflake.py) run the target's real code: its DDL,
types, name casing, PUT to the user stage, MERGE upserts and ACTIVATE_VERSION. The
README's "Snowflake" section says what this proves and what only a real account can.
A full run, then an incremental one after the emulator updated and added responses;
the tables are compared with the emulator's truth after each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tap_smartforms_emulator import PRIMARY_KEYS, STREAMS, Emulator, FormSpec
from tests.conftest import keys, tap_runner
from tests.snowflake.fake import SCHEMA, FakeSnowflake

pytestmark = pytest.mark.slow


def _live(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["_SDC_DELETED_AT"] is None]


def _keys_of_rows(rows: list[dict[str, Any]], stream: str) -> set[tuple[Any, ...]]:
    return {tuple(row[name.upper()] for name in PRIMARY_KEYS[stream]) for row in rows}


@dataclass
class Loads:
    emulator: Emulator
    warehouse: FakeSnowflake
    first_tables: dict[str, list[dict[str, Any]]]
    first_run_records: dict[str, list[dict[str, Any]]]
    second_run_records: dict[str, list[dict[str, Any]]]
    updated: set[str]
    inserted: str


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Full run, then incremental run, each loaded into one fake Snowflake."""
    folder = tmp_path_factory.mktemp("snowflake")
    warehouse = FakeSnowflake(folder)
    emu = Emulator(forms=[FormSpec(responses=90, seed=41), FormSpec(responses=45, seed=42)])
    emu.start()
    try:
        run_tap = tap_runner(folder)
        config = emu.tap_config(page_size=40)
        first = run_tap(config)
        assert first.returncode == 0, first.stderr
        warehouse.load(first.stdout)
        first_tables = {stream: warehouse.table(stream) for stream in STREAMS}

        ds_id = emu.data_source_ids[0]
        updated = set(emu.response_ids(ds_id)[2:80:11])
        for response_id in updated:
            emu.update_response(ds_id, response_id)
        inserted = emu.insert_response(ds_id)
        second = run_tap(config, state=first.states[-1])
        assert second.returncode == 0, second.stderr
        warehouse.load(second.stdout)
        yield Loads(
            emu,
            warehouse,
            first_tables,
            {stream: first.records(stream) for stream in STREAMS},
            {stream: second.records(stream) for stream in STREAMS},
            updated,
            inserted,
        )
    finally:
        emu.stop()


def test_first_run_loads_every_table_with_the_emulator_rows(loads):
    truth = loads.emulator.truth()
    for stream in STREAMS:
        rows = loads.first_tables[stream]
        assert len(rows) == len(loads.first_run_records[stream]) > 0, stream
        # The first run's truth is what the tap emitted then (test_end_to_end holds that
        # to the emulator); every key is in the table exactly once.
        assert _keys_of_rows(rows, stream) == set(keys(loads.first_run_records[stream], stream))
    assert len(loads.first_tables["responses"]) == len(truth["responses"]) - 1  # one inserted since


def test_second_run_upserts_in_place_and_tables_match_the_emulator(loads):
    truth = loads.emulator.truth()
    assert {r["id"] for r in loads.second_run_records["responses"]} >= loads.updated | {
        loads.inserted
    }
    for stream in ("forms", "questions", "responses", "answers"):
        rows = loads.warehouse.table(stream)
        assert len(rows) == len(truth[stream]), stream  # updated in place, no duplicates
        assert _keys_of_rows(rows, stream) == set(keys(truth[stream], stream)), stream
    # An update may replace a response's attachments: a target upserts and never
    # deletes, so the replaced ones stay, and only those.
    attachments = loads.warehouse.table("attachments")
    expected = set(keys(truth["attachments"], "attachments"))
    assert len(attachments) == len(_keys_of_rows(attachments, "attachments"))
    assert _keys_of_rows(attachments, "attachments") >= expected
    stale = [row for row in attachments if (row["ID"],) not in expected]
    assert {row["RESPONSE_ID"] for row in stale} <= loads.updated
    truth_updated_at = {r["id"]: r["updated_at"] for r in truth["responses"]}
    loaded = {row["ID"]: row for row in loads.warehouse.table("responses")}
    first = {row["ID"]: row for row in loads.first_tables["responses"]}
    for response_id in loads.updated:
        assert loaded[response_id]["UPDATED_AT"] != first[response_id]["UPDATED_AT"]
        assert _same_instant(loaded[response_id]["UPDATED_AT"], truth_updated_at[response_id])


def _same_instant(loaded: str, emitted: str) -> bool:
    return datetime.fromisoformat(loaded) == datetime.fromisoformat(emitted)


def test_columns_are_upper_cased_and_typed_for_snowflake(loads):
    columns = {
        (row["TABLE_NAME"], row["COLUMN_NAME"]): row["DATA_TYPE"]
        for row in loads.warehouse.query(
            "select table_name, column_name, data_type from information_schema.columns "
            f"where table_schema = '{SCHEMA}'"
        )
    }
    assert {table for table, _ in columns} == {stream.upper() for stream in STREAMS}
    assert columns[("RESPONSES", "CREATED_ISSUES")] == "VARIANT"
    assert columns[("QUESTIONS", "OPTIONS")] == "VARIANT"
    assert columns[("RESPONSES", "UPDATED_AT")] == "TIMESTAMP_TZ"
    assert columns[("ANSWERS", "RESPONSE_UPDATED_AT")] == "TIMESTAMP_TZ"
    assert columns[("RESPONSES", "ANSWER_COUNT")] == "NUMBER"
    assert columns[("QUESTIONS", "REQUIRED")] == "BOOLEAN"
    assert columns[("ANSWERS", "VALUE")] == "TEXT"


def test_variant_columns_can_be_queried_as_json(loads):
    rows = loads.warehouse.query(
        f"select form_id, id, options[0]:label::varchar as first_label from {SCHEMA}.QUESTIONS "
        "where array_size(options) > 0"
    )
    expected = {
        (r["form_id"], r["id"]): r["options"][0]["label"]
        for r in loads.emulator.truth()["questions"]
        if r["options"]
    }
    assert expected
    assert {(row["FORM_ID"], row["ID"]): row["FIRST_LABEL"] for row in rows} == expected


def test_unicode_text_round_trips(loads):
    emitted = {
        (r["response_id"], r["question_id"]): r["value_text"]
        for r in loads.emulator.truth()["answers"]
        if r["value_text"] and not r["value_text"].isascii()
    }
    assert emitted, "the emulator's data has no non-ASCII answers to check"
    loaded = {
        (row["RESPONSE_ID"], row["QUESTION_ID"]): row["VALUE_TEXT"]
        for row in loads.warehouse.table("answers")
    }
    for key, text in emitted.items():
        assert loaded[key] == text


def _activations(run: Any) -> dict[str, int]:
    return {m["stream"]: m["version"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}


def test_tap_activate_version_soft_deletes_what_smart_forms_deleted(tmp_path):
    # The tap's own ACTIVATE_VERSION, into a warehouse of its own: a reconcile run with
    # versioned forms and questions, then one after the emulator deleted a response
    # (with its answers and files) and a question.
    warehouse = FakeSnowflake(tmp_path)
    emu = Emulator(forms=[FormSpec(responses=40, seed=43), FormSpec(responses=20, seed=44)])
    emu.start()
    try:
        run_tap = tap_runner(tmp_path)
        config = emu.tap_config(
            page_size=15, emit_activate_version_messages=True, full_refresh_responses=True
        )
        first = run_tap(config)
        assert first.returncode == 0, first.stderr
        warehouse.load(first.stdout)
        before = emu.truth()

        ds_id = emu.data_source_ids[0]
        with_files = {a["response_id"] for a in before["attachments"]}
        response_id = next(r for r in emu.response_ids(ds_id) if r in with_files)
        emu.delete_response(ds_id, response_id)
        question = next(q for q in before["questions"] if q["data_source_id"] == ds_id)
        emu.delete_question(ds_id, question["id"])
        second = run_tap(config, state=first.states[-1])
        assert second.returncode == 0, second.stderr
        warehouse.load(second.stdout)
        truth = emu.truth()
    finally:
        emu.stop()

    activated = _activations(second)
    assert set(activated) == set(STREAMS)
    deleted_somewhere: dict[str, set[tuple[Any, ...]]] = {}
    for stream in STREAMS:
        rows = warehouse.table(stream)
        everything = _keys_of_rows(rows, stream)
        assert len(rows) == len(everything), stream
        # Soft delete: every row ever loaded stays; the live ones are Smart Forms' now,
        # all of the tap's last version, and exactly the others are marked.
        assert everything == set(keys(before[stream], stream)), stream
        live = _live(rows)
        assert _keys_of_rows(live, stream) == set(keys(truth[stream], stream)), stream
        assert {row["_SDC_TABLE_VERSION"] for row in live} == {activated[stream]}, stream
        marked = [row for row in rows if row["_SDC_DELETED_AT"] is not None]
        deleted_somewhere[stream] = _keys_of_rows(marked, stream)
        assert deleted_somewhere[stream] == everything - set(keys(truth[stream], stream)), stream

    assert deleted_somewhere["responses"] == {(response_id,)}
    assert deleted_somewhere["questions"] == {(question["form_id"], question["id"])}
    assert deleted_somewhere["forms"] == set()
    for stream in ("answers", "attachments"):
        assert deleted_somewhere[stream], stream
        of_response = {
            tuple(r[name] for name in PRIMARY_KEYS[stream])
            for r in before[stream]
            if r["response_id"] == response_id
        }
        assert deleted_somewhere[stream] == of_response, stream


def test_tap_batch_messages_load_every_table_with_the_emulator_rows(tmp_path):
    # BATCH messages (jsonl + gzip files under a file:// root): the target reads the
    # tap's files, PUTs them to the stage and MERGEs them like its own.
    warehouse = FakeSnowflake(tmp_path / "warehouse")
    emu = Emulator(forms=[FormSpec(responses=60, seed=45), FormSpec(responses=30, seed=46)])
    emu.start()
    try:
        batches = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": (tmp_path / "batches").as_uri()},
            "batch_size": 100,
        }
        run = tap_runner(tmp_path)(emu.tap_config(page_size=25, batch_config=batches))
        assert run.returncode == 0, run.stderr
        truth = emu.truth()
    finally:
        emu.stop()

    types = [m["type"] for m in run.messages]
    assert "RECORD" not in types
    assert {m["stream"] for m in run.messages if m["type"] == "BATCH"} == set(STREAMS)
    assert types.count("BATCH") > len(STREAMS), "several batch files per stream"
    warehouse.load(run.stdout)
    for stream in STREAMS:
        rows = warehouse.table(stream)
        assert truth[stream], stream
        assert len(rows) == len(truth[stream]), stream
        assert _keys_of_rows(rows, stream) == set(keys(truth[stream], stream)), stream
    loaded = {row["ID"]: row["UPDATED_AT"] for row in warehouse.table("responses")}
    for response in truth["responses"]:
        assert _same_instant(loaded[response["id"]], response["updated_at"])
