"""The dbt package in dbt/ (issue 14): emulator -> tap -> target -> dbt, on PostgreSQL
and DuckDB, through Meltano's dbt utilities of meltano.yml.

The wide views are read back and compared with the emulator's truth: every question
column of a response holds that response's answer, typed by the question's type. One
form has 200 questions whose labels mix scripts, accents, emoji, duplicates and
empties. The column-naming macro itself is run through dbt (run-operation, DuckDB in
memory) on labels with the names they must give.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tap_smartforms_emulator import Emulator, FormSpec, Truth
from tap_smartforms_emulator.timefmt import parse_instant
from tests.conftest import REPO_ROOT, MeltanoProject, config_secrets, plugin_env
from tests.warehouses import DuckDB, Postgres, Row, Warehouse

pytestmark = pytest.mark.slow

DBT_TIMEOUT_SECONDS = 300
RESPONSE_COLUMNS = [
    "response_id", "form_id", "data_source_id", "status", "created_at", "updated_at",
    "submitted_at", "respondent_account_id", "respondent_display_name", "respondent_email",
    "issue_key", "issue_summary",
]  # fmt: skip
COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

# The 200-question form's labels (repeated), each with the column name it must get the
# first time it appears; None: q_<question id>. Names already given get _2, _3...
WIDE_LABELS: list[tuple[str, str | None]] = [
    ("Full name", "full_name"),
    ("Café au lait — naïve résumé", "cafe_au_lait_naive_resume"),
    ("名前", None),
    ("", None),
    ("Straße / Ærøskøbing / Łódź", "strasse_aeroskobing_lodz"),
    ("Thumbs up 👍🏽", "thumbs_up"),
    ("🎉🎉", None),
    ("Full name", "full_name_2"),
    ("Status", "status_2"),  # the response's own status column comes first
    ("select", "select_"),
    ("100% done?", "q_100_done"),
    ("请在周五之前完成入职培训 (deadline)", "deadline"),
    ("combining e\u0301 accent", "combining_e_accent"),
    ("x" * 80, "x" * 63),
]


# ------------------------------------------------------------------ the naming macro


def dbt_executable(meltano: MeltanoProject, utility: str) -> Path:
    """dbt as `meltano install` put it in the utility's venv."""
    return meltano.sys_dir / "utilities" / utility / "venv" / "bin" / "dbt"


def column_names(
    meltano: MeltanoProject, tmp_path: Path, questions: list[list[str]], taken: list[str]
) -> list[str]:
    """What the package's smartforms_column_names macro gives, run by dbt on DuckDB."""
    args = json.dumps({"questions": questions, "taken": taken}, ensure_ascii=False)
    completed = subprocess.run(
        [
            str(dbt_executable(meltano, "dbt-duckdb")),
            "--quiet",
            "run-operation",
            "smartforms_print_column_names",
            "--args",
            args,
        ],
        capture_output=True,
        text=True,
        timeout=DBT_TIMEOUT_SECONDS,
        check=False,
        cwd=REPO_ROOT / "dbt",
        env={
            "PATH": "/usr/bin:/bin",
            "DBT_PROFILES_DIR": str(REPO_ROOT / "dbt" / "profiles"),
            "DBT_TARGET": "duckdb",
            "DBT_DUCKDB_PATH": ":memory:",
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    names: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return names


def test_column_names_are_folded_unique_and_fit_every_warehouse(meltano, tmp_path):
    questions = [[f"q-{n}", label] for n, (label, _) in enumerate(WIDE_LABELS)]
    questions += [["q-dup-a", "Full name"], ["q-dup-b", "x" * 80], ["8f3a", "  "]]
    names = column_names(meltano, tmp_path, questions, taken=RESPONSE_COLUMNS)

    expected = [name or f"q_{n}" for n, (_, name) in enumerate(WIDE_LABELS)]
    expected += ["full_name_3", "x" * 61 + "_2", "q_8f3a"]
    assert names == expected


def test_two_hundred_questions_get_two_hundred_distinct_valid_names(meltano, tmp_path):
    labels = [label for label, _ in WIDE_LABELS]
    questions = [[f"q-{n:03d}", labels[n % len(labels)]] for n in range(200)]
    names = column_names(meltano, tmp_path, questions, taken=RESPONSE_COLUMNS)

    assert len(names) == 200
    assert len(set(names) | set(RESPONSE_COLUMNS)) == 200 + len(RESPONSE_COLUMNS)
    assert all(COLUMN_NAME.fullmatch(name) for name in names), names
    # The 15th label is the first repeat: "Full name" after full_name and full_name_2.
    assert names[len(labels)] == "full_name_3"


# ------------------------------------------------------------------ end to end


@dataclass
class DbtPipeline:
    warehouse: Warehouse
    dbt_schema: str
    truth: Truth
    views: dict[str, str]  # form id -> wide view
    log: str


def dbt_env(warehouse: Warehouse, dbt_schema: str) -> dict[str, str]:
    """The utility's settings as Meltano reads them from the environment."""
    if isinstance(warehouse, Postgres):
        return {
            "DBT_POSTGRES_SOURCE_SCHEMA": warehouse.schema,
            "DBT_POSTGRES_SCHEMA": dbt_schema,
            "DBT_POSTGRES_PASSWORD": warehouse.password,
        }
    assert isinstance(warehouse, DuckDB)
    return {
        "DBT_DUCKDB_SOURCE_SCHEMA": warehouse.schema,
        "DBT_DUCKDB_PATH": str(warehouse.path),
        "DBT_DUCKDB_SCHEMA": dbt_schema,
    }


@pytest.fixture(scope="module", params=["postgres", "duckdb"])
def dbt_pipeline(
    request: pytest.FixtureRequest,
    meltano: MeltanoProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DbtPipeline]:
    scratch = tmp_path_factory.mktemp(f"dbt-{request.param}")
    warehouse: Warehouse = (
        Postgres() if request.param == "postgres" else DuckDB(scratch / "warehouse.duckdb")
    )
    dbt = f"dbt-{request.param}"
    dbt_schema = f"{getattr(warehouse, 'schema', 'smartforms')}_dbt"
    labels = tuple(label for label, _ in WIDE_LABELS)
    forms = [
        FormSpec(responses=40, seed=61),
        FormSpec(responses=25, seed=62, answers_per_response=200, question_labels=labels),
    ]
    try:
        with Emulator(forms=forms) as emu:
            config = emu.tap_config(token_store_path=str(scratch / "tokens.json"))
            result = meltano.run(
                "run",
                "--state-id-suffix",
                uuid.uuid4().hex[:12],
                "tap-smartforms",
                warehouse.loader,
                f"{dbt}:run",
                f"{dbt}:test",
                f"{dbt}:wide-views",
                env={
                    **plugin_env("tap-smartforms", config),
                    **warehouse.env(),
                    **dbt_env(warehouse, dbt_schema),
                },
                secrets=config_secrets(config),
            )
            assert result.returncode == 0, result.stderr[-8000:]
            truth = emu.truth()
        created = re.findall(r"smartforms: \S+\.\"?(wide_\w+)\"? \(form ([^)]+)\)", result.stderr)
        views = {form: view for view, form in created}
        yield DbtPipeline(warehouse, dbt_schema, truth, views, result.stderr)
    finally:
        warehouse.drop()
        if isinstance(warehouse, Postgres):
            with psycopg.connect(**warehouse._connection, autocommit=True) as connection:
                connection.execute(f'drop schema if exists "{dbt_schema}" cascade')


def wide_rows(pipeline: DbtPipeline, view: str) -> tuple[list[str], list[Row]]:
    rows = pipeline.warehouse.query(
        f'select * from "{pipeline.dbt_schema}"."{view}" order by response_id'
    )
    return (list(rows[0]) if rows else []), rows


def question_order(truth: Truth, form_id: str) -> list[str]:
    """The wide table's question columns, in order: the form's questions by position,
    then questions answered but deleted from the form, by id."""
    current = sorted(
        (q for q in truth["questions"] if q["form_id"] == form_id), key=lambda q: q["position"]
    )
    ids = [q["id"] for q in current]
    deleted = sorted(
        {a["question_id"] for a in truth["answers"] if a["form_id"] == form_id} - set(ids)
    )
    return ids + deleted


def deleted_keys(truth: Truth) -> set[tuple[str, str]]:
    current = {(q["form_id"], q["id"]) for q in truth["questions"]}
    return {(a["form_id"], a["question_id"]) for a in truth["answers"]} - current


def expected_value(pipeline: DbtPipeline, answer: Row | None, qtype: str, files: list[str]) -> Any:
    """The typed cell the wide table must hold for one answer."""
    if qtype == "attachment":
        return sorted(files) or None
    text = None if answer is None else answer["value_text"]
    if text is None or (text == "" and pipeline.warehouse.empty_text_is_null):
        return None
    if qtype in ("number", "rating"):
        return Decimal(text)
    if qtype == "date":
        return date.fromisoformat(text)
    if qtype == "datetime":
        return parse_instant(text).replace(tzinfo=None)
    if qtype == "checkbox":
        return text == "true"
    return text


def as_compared(loaded: Any, qtype: str) -> Any:
    if loaded is None:
        return None
    if qtype == "attachment":
        return sorted(loaded.split(", "))
    if qtype in ("number", "rating"):
        # DuckDB's double and PostgreSQL's numeric, both read back at full precision.
        return Decimal(repr(loaded)) if isinstance(loaded, float) else loaded
    return loaded


def test_dbt_tests_ran_and_passed(dbt_pipeline):
    assert re.search(r"Done\. PASS=(\d+) WARN=0 ERROR=0", dbt_pipeline.log)
    assert "PASS relationships_stg_smartforms__answers_response_id" in dbt_pipeline.log


def test_one_wide_view_per_form(dbt_pipeline):
    assert set(dbt_pipeline.views) == {f["id"] for f in dbt_pipeline.truth["forms"]}


def test_wide_view_has_one_row_per_response_and_one_column_per_question(dbt_pipeline):
    truth = dbt_pipeline.truth
    for form_id, view in dbt_pipeline.views.items():
        columns, rows = wide_rows(dbt_pipeline, view)
        responses = sorted(r["id"] for r in truth["responses"] if r["form_id"] == form_id)
        assert [row["response_id"] for row in rows] == responses, view
        assert columns[: len(RESPONSE_COLUMNS)] == RESPONSE_COLUMNS
        question_columns = columns[len(RESPONSE_COLUMNS) :]
        assert len(question_columns) == len(question_order(truth, form_id)), view
        assert len(set(columns)) == len(columns), view
        assert all(COLUMN_NAME.fullmatch(name) for name in question_columns), view


def test_wide_view_cells_are_the_answers_typed_by_question_type(dbt_pipeline):
    truth = dbt_pipeline.truth
    answers = {(a["response_id"], a["question_id"]): a for a in truth["answers"]}
    files: dict[tuple[str, str], list[str]] = {}
    for attachment in truth["attachments"]:
        key = (attachment["response_id"], attachment["question_id"])
        files.setdefault(key, []).append(attachment["file_name"])
    types = {(q["form_id"], q["id"]): q["type"] for q in truth["questions"]}
    # A deleted question's type is what its answers say (the package takes the max).
    for answer in sorted(truth["answers"], key=lambda a: a["type"] or ""):
        key = (answer["form_id"], answer["question_id"])
        if answer["type"] and (key not in types or key in deleted_keys(truth)):
            types[key] = answer["type"]
    checked_types: set[str] = set()
    for form_id, view in dbt_pipeline.views.items():
        columns, rows = wide_rows(dbt_pipeline, view)
        order = question_order(truth, form_id)
        for row in rows[:12]:
            for question_id, column in zip(order, columns[len(RESPONSE_COLUMNS) :], strict=True):
                answer = answers.get((row["response_id"], question_id))
                qtype = types.get((form_id, question_id)) or "text"
                expected = expected_value(
                    dbt_pipeline, answer, qtype, files.get((row["response_id"], question_id), [])
                )
                loaded = as_compared(row[column], qtype)
                assert loaded == expected, (view, row["response_id"], column, qtype)
                if expected is not None:
                    checked_types.add(qtype)
    # Every typed path was compared with a value, not only with nulls.
    assert {"number", "rating", "date", "datetime", "checkbox", "attachment", "text"} <= (
        checked_types
    )


def test_deleted_question_keeps_its_column(dbt_pipeline):
    truth = dbt_pipeline.truth
    messy_form = truth["forms"][0]["id"]
    columns, rows = wide_rows(dbt_pipeline, dbt_pipeline.views[messy_form])
    assert "old_question_deleted" in columns
    assert any(row["old_question_deleted"] is not None for row in rows)


def test_two_hundred_question_form_names_its_columns_from_the_labels(dbt_pipeline):
    truth = dbt_pipeline.truth
    wide_form = truth["forms"][1]["id"]
    columns, _ = wide_rows(dbt_pipeline, dbt_pipeline.views[wide_form])
    question_columns = columns[len(RESPONSE_COLUMNS) :]
    order = question_order(truth, wide_form)
    # 200 questions, and the messy form's question deleted since (its answers remain).
    assert len([q for q in truth["questions"] if q["form_id"] == wide_form]) == 200
    assert len(question_columns) == len(order) == 201
    for n, (_, name) in enumerate(WIDE_LABELS):
        question_id = order[n]
        # Question ids look like q-1a2b3c4d: q_1a2b3c4d when the label gives no name.
        assert question_columns[n] == (name or question_id.replace("-", "_"))
