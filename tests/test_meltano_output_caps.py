"""BATCH and ACTIVATE_VERSION through real Meltano pipelines into PostgreSQL.

The repository's Meltano project (tests/conftest.py's `meltano` fixture) against the
emulator: rows loaded from batch files, and rows the target marks deleted
(`_sdc_deleted_at`, target-postgres' default `hard_delete: false`) once the tap
sends ACTIVATE_VERSION.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms_emulator import STREAMS, Emulator, FormSpec, Truth
from tests.conftest import MeltanoProject
from tests.warehouses import (
    Postgres,
    Row,
    differing_columns,
    key,
    keyed,
    meltano_run_into,
    table_rows,
)

pytestmark = pytest.mark.slow


def run_pipeline(
    meltano: MeltanoProject,
    emu: Emulator,
    warehouse: Postgres,
    suffix: str,
    tokens: Path,
    extra_env: dict[str, str] | None = None,
    **settings: Any,
) -> Any:
    config = emu.tap_config(page_size=20, token_store_path=str(tokens), **settings)
    return meltano_run_into(meltano, warehouse, config, suffix, env=extra_env, check=False)


def assert_loaded_as_truth(loaded: dict[str, list[Row]], truth: Truth) -> None:
    for stream in STREAMS:
        expected = keyed(truth[stream], stream)
        rows = keyed(loaded[stream], stream)
        assert len(loaded[stream]) == len(expected), f"{stream}: row count"
        assert set(rows) == set(expected), f"{stream}: keys"
        for row_key, row in rows.items():
            differing = differing_columns(row, expected[row_key], stream, Postgres())
            assert differing == [], f"{stream} {row_key}: {differing}"


# ------------------------------------------------------------------ BATCH


def test_batch_messages_load_into_postgres_as_the_emulator_holds_them(
    meltano: MeltanoProject, tmp_path: Path
) -> None:
    warehouse = Postgres()
    batches = tmp_path / "batches"
    # Meltano's own setting names (meltano.yml: batch_config.encoding.format, ...),
    # as a user sets them in .env.
    batch_env = {
        "TAP_SMARTFORMS_BATCH_CONFIG_ENCODING_FORMAT": "jsonl",
        "TAP_SMARTFORMS_BATCH_CONFIG_ENCODING_COMPRESSION": "gzip",
        "TAP_SMARTFORMS_BATCH_CONFIG_STORAGE_ROOT": batches.as_uri(),
    }
    try:
        with Emulator(
            forms=[FormSpec(responses=70, seed=61), FormSpec(responses=30, seed=62)]
        ) as emu:
            result = run_pipeline(
                meltano, emu, warehouse, uuid.uuid4().hex[:12], tmp_path / "t.json", batch_env
            )
            assert result.returncode == 0, result.stderr[-5000:]
            truth = emu.truth()
        assert list(batches.glob("*.json.gz")), "the rows came through batch files"
        assert_loaded_as_truth(table_rows(warehouse), truth)
    finally:
        warehouse.drop()


# ------------------------------------------------------------------ ACTIVATE_VERSION


@dataclass
class Deletions:
    """Three runs with versioned forms, questions and reconciled responses: the first
    loads; then a question and some responses are deleted and a response's files
    replaced, and a reconcile runs with one data source failing, then a healthy one."""

    truth_first: Truth
    truth_last: Truth
    deleted_question: tuple[str, str]
    deleted_responses: set[str]
    replaced_files_of: str
    failed_run_returncode: int
    after_failed_run: dict[str, list[Row]]
    after_reconcile: dict[str, list[Row]]


@pytest.fixture(scope="module")
def deletions(
    meltano: MeltanoProject, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deletions]:
    warehouse = Postgres()
    tokens = tmp_path_factory.mktemp("deletions") / "tokens.json"
    suffix = uuid.uuid4().hex[:12]
    settings = {"emit_activate_version_messages": True, "full_refresh_responses": True}
    try:
        with Emulator(
            forms=[FormSpec(responses=40, seed=63), FormSpec(responses=40, seed=64)]
        ) as emu:
            first = run_pipeline(meltano, emu, warehouse, suffix, tokens, **settings)
            assert first.returncode == 0, first.stderr[-5000:]
            truth_first = emu.truth()
            one, two = emu.data_source_ids

            question = next(q for q in truth_first["questions"] if q["data_source_id"] == one)
            emu.delete_question(one, question["id"])
            deleted = {
                emu.response_ids(one)[3],
                emu.response_ids(one)[-1],
                emu.response_ids(two)[5],
            }
            for ds in (one, two):
                for response_id in deleted & set(emu.response_ids(ds)):
                    emu.delete_response(ds, response_id)
            with_files = next(
                a["response_id"]
                for a in truth_first["attachments"]
                if a["data_source_id"] == two and a["response_id"] not in deleted
            )
            emu.replace_attachments(two, with_files)

            emu.set_data_source_failure(two, "forbidden")
            failed = run_pipeline(meltano, emu, warehouse, suffix, tokens, **settings)
            after_failed = table_rows(warehouse)
            emu.set_data_source_failure(two, None)

            last = run_pipeline(meltano, emu, warehouse, suffix, tokens, **settings)
            assert last.returncode == 0, last.stderr[-5000:]
            yield Deletions(
                truth_first=truth_first,
                truth_last=emu.truth(),
                deleted_question=(question["form_id"], question["id"]),
                deleted_responses=deleted,
                replaced_files_of=with_files,
                failed_run_returncode=failed.returncode,
                after_failed_run=after_failed,
                after_reconcile=table_rows(warehouse),
            )
    finally:
        warehouse.drop()


def marked(rows: list[Row], stream: str) -> set[tuple[Any, ...]]:
    return {key(row, stream) for row in rows if row["_sdc_deleted_at"] is not None}


def test_a_run_with_a_failed_data_source_marks_nothing_deleted(deletions):
    assert deletions.failed_run_returncode != 0
    for stream in STREAMS:
        assert marked(deletions.after_failed_run[stream], stream) == set(), stream


def test_reconcile_marks_exactly_the_rows_gone_from_the_api(deletions):
    loaded = deletions.after_reconcile
    for stream in STREAMS:
        ever = {key(row, stream) for row in loaded[stream]}
        now = {key(row, stream) for row in deletions.truth_last[stream]}
        assert marked(loaded[stream], stream) == ever - now, stream
        assert now <= ever, f"{stream}: every current row is loaded"


def test_the_deleted_question_is_marked_and_no_other(deletions):
    assert marked(deletions.after_reconcile["questions"], "questions") == {
        deletions.deleted_question
    }
    assert marked(deletions.after_reconcile["forms"], "forms") == set()


def test_deleted_responses_are_marked_with_their_answers_and_files(deletions):
    loaded = deletions.after_reconcile
    assert {k[0] for k in marked(loaded["responses"], "responses")} == deletions.deleted_responses
    for stream in ("answers", "attachments"):
        gone = {
            key(row, stream)
            for row in deletions.truth_first[stream]
            if row["response_id"] in deletions.deleted_responses
        }
        assert gone <= marked(loaded[stream], stream), stream
    assert any(row["response_id"] in deletions.deleted_responses for row in loaded["answers"]), (
        "the deleted responses had answers"
    )


def test_replaced_files_are_marked_and_their_replacements_are_not(deletions):
    attachments = deletions.after_reconcile["attachments"]
    of_response = [r for r in attachments if r["response_id"] == deletions.replaced_files_of]
    old = {key(r, "attachments") for r in deletions.truth_first["attachments"]}
    old_files = {key(r, "attachments") for r in of_response} & old
    new_files = {key(r, "attachments") for r in of_response} - old
    assert old_files, "the response's old files are in the table"
    assert new_files, "its new files were loaded"
    assert old_files <= marked(attachments, "attachments")
    assert not new_files & marked(attachments, "attachments")
