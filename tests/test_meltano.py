"""Real pipelines: the repository's Meltano project against the emulator, into
PostgreSQL (127.0.0.1:5432, as meltano.yml configures it) and DuckDB.

Each pipeline is run twice: a first, full sync, then, after the emulator inserted and
updated responses, an incremental one. The warehouse is read after each run and
compared with the emulator's truth.
"""

from __future__ import annotations

import json
import random
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms.timestamps import parse_timestamp
from tap_smartforms.token_store import EntryKey, TokenStore
from tap_smartforms_emulator import COLUMNS, PRIMARY_KEYS, STREAMS, Emulator, FormSpec, Truth
from tests.conftest import (
    MELTANO_TIMEOUT_SECONDS,
    MeltanoProject,
    assert_no_secrets,
    config_secrets,
    plugin_env,
    responses_bookmarks,
    tap_about,
)
from tests.warehouses import (
    DuckDB,
    Postgres,
    Row,
    Warehouse,
    differing_columns,
    key,
    keyed,
    meltano_run_into,
    table_rows,
)

# Every pipeline installs plugins and runs Meltano: minutes, so not in the fast lane.
pytestmark = pytest.mark.slow

PAGE_SIZE = 25
JOIN_SAMPLE = 6


# ------------------------------------------------------------------ joins


JOIN_SQL = """
select r.id as response_id, q.id as question_id, q.label as question_label, a.value_text
from {{schema}}.responses r
join {{schema}}.answers a on a.response_id = r.id
join {{schema}}.questions q on q.form_id = a.form_id and q.id = a.question_id
where r.id in ({placeholders})
"""


def joined_answers(warehouse: Warehouse, response_ids: list[str]) -> set[tuple[Any, ...]]:
    """responses -> answers -> questions in SQL, for some responses."""
    placeholders = ", ".join([warehouse.placeholder] * len(response_ids))
    rows = warehouse.query(JOIN_SQL.format(placeholders=placeholders), tuple(response_ids))
    return {
        (row["response_id"], row["question_id"], row["question_label"], row["value_text"])
        for row in rows
    }


def expected_joined_answers(
    truth: Truth, response_ids: list[str], warehouse: Warehouse
) -> set[tuple[Any, ...]]:
    """The same join, done on the emulator's truth."""
    questions = {(q["form_id"], q["id"]): q for q in truth["questions"]}
    return {
        tuple(
            None if value == "" and warehouse.empty_text_is_null else value
            for value in (a["response_id"], a["question_id"], question["label"], a["value_text"])
        )
        for a in truth["answers"]
        if a["response_id"] in response_ids
        and (question := questions.get((a["form_id"], a["question_id"]))) is not None
    }


# ------------------------------------------------------------------ comparing rows


def assert_rows_match(
    pipeline: IncrementalPipeline, loaded: list[Row], truth: Truth, stream: str, keys: set[Any]
) -> None:
    """The loaded rows with these keys hold exactly the truth's values."""
    by_key, expected = keyed(loaded, stream), keyed(truth[stream], stream)
    for row_key in keys:
        differing = differing_columns(
            by_key[row_key], expected[row_key], stream, pipeline.warehouse
        )
        assert differing == [], f"{stream} {row_key}: {differing} differ from the emulator"


# ------------------------------------------------------------------ the two runs


@dataclass
class IncrementalPipeline:
    """What two `meltano run`s into one warehouse loaded, and what the emulator held."""

    warehouse: Warehouse
    truth_first: Truth
    loaded_first: dict[str, list[Row]]
    joined_first: set[tuple[Any, ...]]
    sampled: list[str]
    bookmarks: dict[str, datetime]
    inserted: set[str]
    updated: set[str]
    truth_second: Truth = field(default_factory=dict)
    loaded_second: dict[str, list[Row]] = field(default_factory=dict)
    joined_second: set[tuple[Any, ...]] = field(default_factory=set)

    def read_again(self) -> set[str]:
        """Responses the second run reads: updated at or after their data source's bookmark."""
        return {
            r["id"]
            for r in self.truth_second["responses"]
            if parse_timestamp(r["updated_at"]) >= self.bookmarks[r["data_source_id"]]
        }


def meltano_run(
    meltano: MeltanoProject,
    emu: Emulator,
    warehouse: Warehouse,
    state_suffix: str,
    token_store: Path,
) -> None:
    config = emu.tap_config(page_size=PAGE_SIZE, token_store_path=str(token_store))
    meltano_run_into(meltano, warehouse, config, state_suffix)


@pytest.fixture(scope="module", params=["target-postgres", "target-duckdb"])
def pipeline(
    request: pytest.FixtureRequest,
    meltano: MeltanoProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IncrementalPipeline]:
    scratch = tmp_path_factory.mktemp(request.param)
    warehouse: Warehouse = (
        Postgres() if request.param == "target-postgres" else DuckDB(scratch / "warehouse.duckdb")
    )
    suffix = uuid.uuid4().hex[:12]
    rng = random.Random(5)
    forms = [FormSpec(responses=80, seed=51), FormSpec(responses=45, seed=52)]
    try:
        with Emulator(forms=forms) as emu:
            meltano_run(meltano, emu, warehouse, suffix, scratch / "tokens.json")
            truth = emu.truth()
            state = meltano.state(meltano.state_id("tap-smartforms", warehouse.loader, suffix))
            sampled = rng.sample(sorted({a["response_id"] for a in truth["answers"]}), JOIN_SAMPLE)
            runs = IncrementalPipeline(
                warehouse=warehouse,
                truth_first=truth,
                loaded_first=table_rows(warehouse),
                joined_first=joined_answers(warehouse, sampled),
                sampled=sampled,
                bookmarks={
                    ds: parse_timestamp(value) for ds, value in responses_bookmarks(state).items()
                },
                inserted=set(),
                updated=set(),
            )

            first, second = emu.data_source_ids
            runs.inserted = {emu.insert_response(first) for _ in range(2)}
            runs.updated = {
                rng.choice(emu.response_ids(first)[:-10]),
                rng.choice(emu.response_ids(second)[:-10]),
            }
            for ds in (first, second):
                for response_id in runs.updated & set(emu.response_ids(ds)):
                    emu.update_response(ds, response_id)

            meltano_run(meltano, emu, warehouse, suffix, scratch / "tokens.json")
            runs.truth_second = emu.truth()
            runs.loaded_second = table_rows(warehouse)
            runs.joined_second = joined_answers(warehouse, sorted(runs.updated))
        yield runs
    finally:
        warehouse.drop()


# ------------------------------------------------------------------ first run


def test_first_run_loads_every_table_with_the_emulator_row_count_and_keys(pipeline):
    for stream in STREAMS:
        loaded = [key(row, stream) for row in pipeline.loaded_first[stream]]
        expected = [key(row, stream) for row in pipeline.truth_first[stream]]
        assert len(loaded) == len(expected), f"{stream}: row count"
        assert set(loaded) == set(expected), f"{stream}: primary keys"


def test_first_run_loads_every_value_as_the_emulator_holds_it(pipeline):
    for stream in STREAMS:
        keys = set(keyed(pipeline.truth_first[stream], stream))
        assert_rows_match(
            pipeline, pipeline.loaded_first[stream], pipeline.truth_first, stream, keys
        )


def test_sql_join_of_responses_answers_questions_gives_each_answer_to_its_question(pipeline):
    expected = expected_joined_answers(pipeline.truth_first, pipeline.sampled, pipeline.warehouse)

    assert len({row[0] for row in expected}) == JOIN_SAMPLE, "every sampled response has answers"
    assert pipeline.joined_first == expected


# ------------------------------------------------------------------ second run


def test_second_run_reads_only_what_changed_since_the_bookmark(pipeline):
    read_again = pipeline.read_again()

    assert pipeline.inserted | pipeline.updated <= read_again
    # At most the responses sitting on a bookmark are read again besides the edits.
    assert len(read_again - pipeline.inserted - pipeline.updated) <= len(pipeline.bookmarks)


def test_second_run_updates_changed_rows_in_place(pipeline):
    loaded = pipeline.loaded_second
    for stream in ("responses", "answers"):
        keys = {
            key(row, stream)
            for row in pipeline.truth_second[stream]
            if (row["id"] if stream == "responses" else row["response_id"]) in pipeline.updated
        }
        assert keys, f"{stream}: the updated responses have rows"
        assert_rows_match(pipeline, loaded[stream], pipeline.truth_second, stream, keys)
    before = keyed(pipeline.loaded_first["responses"], "responses")
    after = keyed(loaded["responses"], "responses")
    for response_id in pipeline.updated:
        assert after[(response_id,)]["updated_at"] != before[(response_id,)]["updated_at"]
    assert pipeline.joined_second == expected_joined_answers(
        pipeline.truth_second, sorted(pipeline.updated), pipeline.warehouse
    )


def test_second_run_adds_new_rows(pipeline):
    for stream in ("responses", "answers", "attachments"):
        id_column = "id" if stream == "responses" else "response_id"
        keys = {
            key(row, stream)
            for row in pipeline.truth_second[stream]
            if row[id_column] in pipeline.inserted
        }
        if stream != "attachments":  # a new response may well have no attachment
            assert keys, f"{stream}: the new responses have rows"
        assert_rows_match(
            pipeline, pipeline.loaded_second[stream], pipeline.truth_second, stream, keys
        )


def test_second_run_leaves_no_duplicate_primary_keys(pipeline):
    for stream in STREAMS:
        counts = Counter(key(row, stream) for row in pipeline.loaded_second[stream])
        assert [k for k, n in counts.items() if n > 1] == [], f"{stream}: duplicate keys"


def test_after_second_run_tables_hold_the_emulator_keys(pipeline):
    for stream in ("forms", "questions", "responses", "answers"):
        loaded = {key(row, stream) for row in pipeline.loaded_second[stream]}
        assert loaded == set(keyed(pipeline.truth_second[stream], stream)), stream
    # An update may replace a response's attachments: a target upserts and never
    # deletes, so the replaced ones stay, and only those.
    loaded = {key(row, "attachments") for row in pipeline.loaded_second["attachments"]}
    expected = set(keyed(pipeline.truth_second["attachments"], "attachments"))
    assert expected <= loaded
    stale = {
        row["response_id"]
        for row in pipeline.loaded_second["attachments"]
        if key(row, "attachments") not in expected
    }
    assert stale <= pipeline.updated


def test_second_run_leaves_unchanged_rows_untouched(pipeline):
    read_again = pipeline.read_again()
    for stream in ("responses", "answers", "attachments"):
        id_column = "id" if stream == "responses" else "response_id"
        before = keyed(pipeline.loaded_first[stream], stream)
        after = keyed(pipeline.loaded_second[stream], stream)
        untouched = {k for k, row in before.items() if row[id_column] not in read_again}
        assert len(untouched) > len(before) / 2, f"{stream}: most rows are not read again"
        # Whole rows, load metadata (_sdc_batched_at, ...) included.
        changed = [k for k in untouched if after[k] != before[k]]
        assert changed == [], f"{stream}: rows not read again were rewritten"


def test_reloaded_rows_carry_the_second_load_time(pipeline):
    # What makes the check above meaningful: a row loaded again shows it.
    before = keyed(pipeline.loaded_first["responses"], "responses")
    after = keyed(pipeline.loaded_second["responses"], "responses")
    for response_id in pipeline.updated:
        first, second = before[(response_id,)], after[(response_id,)]
        assert second["_sdc_batched_at"] > first["_sdc_batched_at"]


# ------------------------------------------------------------------ invoke


def test_meltano_invoke_discover_gives_the_catalog_of_the_five_streams(meltano, emulator):
    config = emulator().tap_config()

    result = meltano.run(
        "invoke",
        "tap-smartforms",
        "--discover",
        env=plugin_env("tap-smartforms", config),
        secrets=config_secrets(config),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    catalog = json.loads(result.stdout)
    keys = {s["tap_stream_id"]: tuple(s["key_properties"]) for s in catalog["streams"]}
    assert keys == PRIMARY_KEYS
    for stream in catalog["streams"]:
        columns = set(stream["schema"]["properties"])
        assert columns == set(COLUMNS[stream["tap_stream_id"]]), stream["tap_stream_id"]


def test_meltano_invoke_about_gives_the_tap_own_about(meltano):
    result = meltano.run("invoke", "tap-smartforms", "--about", "--format=json")

    assert result.returncode == 0, result.stderr[-3000:]
    about = json.loads(result.stdout)
    assert about["name"] == "tap-smartforms"
    assert about == json.loads(tap_about("json"))


# ------------------------------------------------------------------ scale-out


@dataclass
class ScaleOut:
    """Two extractor instances of meltano.yml, run side by side into one warehouse."""

    batches: dict[str, list[str]]
    token_stores: dict[str, Path]
    token_url: str
    client_id: str
    initial_refresh_tokens: dict[str, str]
    logs: dict[str, str]
    states: dict[str, dict[str, Any]]
    truth: Truth
    loaded: dict[str, list[Row]]

    def truth_data_sources(self) -> list[str]:
        return [form["data_source_id"] for form in self.truth["forms"]]


SCALE_OUT_INSTANCES = ("tap-smartforms--batch-a", "tap-smartforms--batch-b")


def start_instance(
    meltano: MeltanoProject,
    emu: Emulator,
    warehouse: Warehouse,
    instance: str,
    batch: list[str],
    state_suffix: str,
) -> subprocess.Popen[str]:
    """Start `meltano run <instance> <loader>` for a batch of the emulator's data sources."""
    # What every batch shares goes in the tap's own variables (TAP_SMARTFORMS_*);
    # each instance's data sources in its own (TAP_SMARTFORMS__BATCH_A_*).
    shared = {k: v for k, v in emu.tap_config(page_size=10).items() if k != "data_sources"}
    data_sources = [
        {"url": emu.data_source_url(ds), "refresh_token": emu.refresh_token(ds)} for ds in batch
    ]
    env = {
        **plugin_env("tap-smartforms", shared),
        **plugin_env(instance, {"data_sources": data_sources}),
        **warehouse.env(),
    }
    return meltano.start(
        "run", "--state-id-suffix", state_suffix, instance, warehouse.loader, env=env
    )


def finish(process: subprocess.Popen[str], emu: Emulator) -> str:
    """Wait for a started run; its log (stderr), checked for secrets."""
    _, log = process.communicate(timeout=MELTANO_TIMEOUT_SECONDS)
    secrets = [emu.client_secret] + [emu.refresh_token(ds) for ds in emu.data_source_ids]
    assert_no_secrets([log], secrets)
    assert process.returncode == 0, log[-5000:]
    return log


@pytest.fixture(scope="module")
def scale_out(meltano: MeltanoProject) -> Iterator[ScaleOut]:
    """The recipe of README "Scale-out": one instance runs first and alone (it creates
    the tables), then every instance runs side by side on each schedule."""
    warehouse = Postgres()
    suffix = uuid.uuid4().hex[:12]
    forms = [FormSpec(responses=30, seed=80 + n) for n in range(4)]
    processes: list[subprocess.Popen[str]] = []
    try:
        with Emulator(forms=forms) as emu:
            ids = emu.data_source_ids
            batches = {SCALE_OUT_INSTANCES[0]: ids[:2], SCALE_OUT_INSTANCES[1]: ids[2:]}
            first, batch = next(iter(batches.items()))
            processes.append(start_instance(meltano, emu, warehouse, first, batch, suffix))
            finish(processes[-1], emu)
            emu.insert_response(batch[0])
            side_by_side = {}
            for instance, batch in batches.items():
                side_by_side[instance] = start_instance(
                    meltano, emu, warehouse, instance, batch, suffix
                )
                processes.append(side_by_side[instance])
            logs = {instance: finish(p, emu) for instance, p in side_by_side.items()}
            truth = emu.truth()
            token_url = emu.token_url
        yield ScaleOut(
            batches=batches,
            # Where meltano.yml puts each instance's store: under Meltano's system folder.
            token_stores={
                instance: meltano.sys_dir / "token-stores" / f"{instance}.json"
                for instance in batches
            },
            token_url=token_url,
            client_id=emu.client_id,
            initial_refresh_tokens={ds: emu.refresh_token(ds) for ds in ids},
            logs=logs,
            states={
                instance: meltano.state(meltano.state_id(instance, warehouse.loader, suffix))
                for instance in batches
            },
            truth=truth,
            loaded=table_rows(warehouse),
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        warehouse.drop()


def test_scale_out_instances_run_side_by_side_into_one_warehouse(scale_out):
    for stream in STREAMS:
        loaded = [key(row, stream) for row in scale_out.loaded[stream]]
        expected = {key(row, stream) for row in scale_out.truth[stream]}
        assert len(loaded) == len(expected), f"{stream}: row count"
        assert set(loaded) == expected, f"{stream}: primary keys"


def test_each_scale_out_instance_syncs_exactly_its_data_sources(scale_out):
    for instance, batch in scale_out.batches.items():
        others = [ds for ds in scale_out.truth_data_sources() if ds not in batch]
        log = scale_out.logs[instance]
        assert all(f"data source {ds}" in log for ds in batch), instance
        assert not any(ds in log for ds in others), instance


def test_each_scale_out_instance_keeps_its_own_state(scale_out):
    for instance, batch in scale_out.batches.items():
        assert set(responses_bookmarks(scale_out.states[instance])) == set(batch), instance


def test_each_scale_out_instance_keeps_its_own_token_store(scale_out):
    for instance, batch in scale_out.batches.items():
        store = TokenStore(scale_out.token_stores[instance])
        for ds in scale_out.truth_data_sources():
            chain = store.read(EntryKey(scale_out.token_url, scale_out.client_id, ds))
            if ds in batch:
                assert chain is not None, f"{instance}: {ds} not in its store"
                assert chain.refresh_token != scale_out.initial_refresh_tokens[ds], "rotated"
            else:
                assert chain is None, f"{instance}: holds another batch's {ds}"
