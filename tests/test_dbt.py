"""The dbt package in dbt/ (issue 14): emulator -> tap -> target -> dbt, on PostgreSQL
and DuckDB, through Meltano's dbt utilities of meltano.yml.

The wide views are read back and compared with the emulator's truth: every question
column of a response holds that response's answer, typed by the question's type. One
form has 200 questions whose labels mix scripts, accents, emoji, duplicates and
empties. The column-naming macro itself is run through dbt (run-operation, DuckDB in
memory) on labels with the names they must give.

Two promises of the README are run as a user meets them, on DuckDB: a question added
to a form between two scheduled runs (the second incremental, from the first's state)
is a new column of the wide view; and the package installs into a dbt project of
one's own from git (`dbt deps`, the README's packages.yml, vars and two-line model).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tap_smartforms.timestamps import parse_timestamp
from tap_smartforms_emulator import AddedQuestion, Emulator, FormSpec, Truth
from tap_smartforms_emulator.timefmt import parse_instant
from tests.conftest import (
    REPO_ROOT,
    MeltanoProject,
    responses_bookmarks,
    tap_runner,
)
from tests.snowflake.fake import DATABASE, SnowflakeWarehouse
from tests.warehouses import DuckDB, Postgres, Row, Warehouse, meltano_run_into

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


def dbt_utility(warehouse: Warehouse) -> str:
    return "dbt-postgres" if isinstance(warehouse, Postgres) else "dbt-duckdb"


def run_with_dbt(
    meltano: MeltanoProject,
    emu: Emulator,
    warehouse: Warehouse,
    dbt_schema: str,
    state_suffix: str,
    token_store: Path,
) -> str:
    """`meltano run tap-smartforms <loader> dbt-X:run dbt-X:test dbt-X:wide-views`, its
    state kept under ``state_suffix`` as Meltano keeps it between scheduled runs; the log."""
    config = emu.tap_config(token_store_path=str(token_store))
    dbt = dbt_utility(warehouse)
    steps = (f"{dbt}:run", f"{dbt}:test", f"{dbt}:wide-views")
    env = dbt_env(warehouse, dbt_schema)
    result = meltano_run_into(meltano, warehouse, config, state_suffix, then=steps, env=env)
    return result.stderr


def created_views(dbt_log: str) -> dict[str, str]:
    """form id -> wide view, from what smartforms_create_wide_views logged."""
    created = re.findall(r"smartforms: \S+\.\"?(wide_\w+)\"? \(form ([^)]+)\)", dbt_log)
    return {form: view for view, form in created}


def snowflake_pipeline(scratch: Path, forms: list[FormSpec]) -> DbtPipeline:
    """The same pipeline on the fake Snowflake, without Meltano: fakesnow answers only
    inside its wrapper process, so the tap's output goes to target-snowflake there, then
    dbt-snowflake runs the package with its own profile (DBT_TARGET=snowflake), as a
    Snowflake user runs it on their own."""
    warehouse = SnowflakeWarehouse(scratch / "snowflake")
    dbt_schema = f"{warehouse.schema}_dbt"
    with Emulator(forms=forms) as emu:
        run = tap_runner(scratch)(emu.tap_config(token_store_path=str(scratch / "tokens.json")))
        assert run.returncode == 0, run.stderr[-4000:]
        warehouse.fake.load(run.stdout)
        truth = emu.truth()
    env = {
        "DBT_TARGET": "snowflake",
        "DBT_PROFILES_DIR": str(REPO_ROOT / "dbt" / "profiles"),
        "DBT_SNOWFLAKE_DATABASE": DATABASE,
        "DBT_SNOWFLAKE_SCHEMA": dbt_schema,
        "SMARTFORMS_SOURCE_SCHEMA": warehouse.schema,
    }
    paths = ["--project-dir", str(REPO_ROOT / "dbt"), "--target-path", str(scratch / "target")]
    paths += ["--log-path", str(scratch / "logs")]
    commands = [["run"], ["test"], ["run-operation", "smartforms_create_wide_views"]]
    log = warehouse.fake.dbt([[*command, *paths] for command in commands], env)
    return DbtPipeline(warehouse, dbt_schema, truth, created_views(log), log)


@pytest.fixture(scope="module", params=["postgres", "duckdb", "snowflake"])
def dbt_pipeline(
    request: pytest.FixtureRequest,
    meltano: MeltanoProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DbtPipeline]:
    scratch = tmp_path_factory.mktemp(f"dbt-{request.param}")
    labels = tuple(label for label, _ in WIDE_LABELS)
    forms = [
        FormSpec(responses=40, seed=61),
        FormSpec(responses=25, seed=62, answers_per_response=200, question_labels=labels),
    ]
    if request.param == "snowflake":
        yield snowflake_pipeline(scratch, forms)
        return
    warehouse: Warehouse = (
        Postgres() if request.param == "postgres" else DuckDB(scratch / "warehouse.duckdb")
    )
    dbt_schema = f"{getattr(warehouse, 'schema', 'smartforms')}_dbt"
    try:
        with Emulator(forms=forms) as emu:
            log = run_with_dbt(
                meltano, emu, warehouse, dbt_schema, uuid.uuid4().hex[:12], scratch / "tokens.json"
            )
            truth = emu.truth()
        yield DbtPipeline(warehouse, dbt_schema, truth, created_views(log), log)
    finally:
        warehouse.drop()
        if isinstance(warehouse, Postgres):
            with psycopg.connect(**warehouse._connection, autocommit=True) as connection:
                connection.execute(f'drop schema if exists "{dbt_schema}" cascade')


def wide_rows(pipeline: DbtPipeline, view: str) -> tuple[list[str], list[Row]]:
    relation = f'"{pipeline.dbt_schema}"."{view}"'
    if isinstance(pipeline.warehouse, SnowflakeWarehouse):
        relation = f"{pipeline.dbt_schema}.{view}"  # dbt-snowflake does not quote names
    rows = pipeline.warehouse.query(f"select * from {relation} order by response_id")
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


# ------------------------------------------------------------------ a question added between runs

NEW_LABEL = "Laptop budget (EUR)"
NEW_COLUMN = "laptop_budget_eur"  # the label's column name (README, "Analytics with dbt")
NEW_VALUE = 1250.75


@dataclass
class QuestionAddedRuns:
    """Two `meltano run`s with dbt into one DuckDB file, a question added to the form
    between them; the second run incremental (the first run's state)."""

    added: AddedQuestion
    truth: Truth  # after the second run
    columns_first: list[str]
    columns_second: list[str]
    types_second: dict[str, str]  # column -> DuckDB type
    rows_second: list[Row]
    bookmark: datetime  # the responses bookmark the first run saved
    truth_first: Truth
    batched_first: dict[str, datetime]  # response id -> _sdc_batched_at
    batched_second: dict[str, datetime]


def view_columns(warehouse: Warehouse, dbt_schema: str, view: str) -> dict[str, str]:
    rows = warehouse.query(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = ? and table_name = ? order by ordinal_position",
        (dbt_schema, view),
    )
    return {row["column_name"]: row["data_type"] for row in rows}


def batched_at(warehouse: Warehouse) -> dict[str, datetime]:
    rows = warehouse.query("select id, _sdc_batched_at from {schema}.responses")
    return {row["id"]: row["_sdc_batched_at"] for row in rows}


@pytest.fixture(scope="module")
def question_added(
    meltano: MeltanoProject, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuestionAddedRuns]:
    scratch = tmp_path_factory.mktemp("dbt-question-added")
    warehouse = DuckDB(scratch / "warehouse.duckdb")
    dbt_schema = "smartforms_dbt"
    suffix = uuid.uuid4().hex[:12]
    try:
        with Emulator(forms=[FormSpec(responses=20, seed=64)]) as emu:
            (ds_id,) = emu.data_source_ids
            tokens = scratch / "tokens.json"
            log = run_with_dbt(meltano, emu, warehouse, dbt_schema, suffix, tokens)
            truth_first = emu.truth()
            (view,) = created_views(log).values()
            columns_first = list(view_columns(warehouse, dbt_schema, view))
            batched_first = batched_at(warehouse)
            state = meltano.state(meltano.state_id("tap-smartforms", warehouse.loader, suffix))

            # The response answering it is the oldest: one no bookmark would re-read.
            added = emu.add_question(ds_id, NEW_LABEL, "number", value=NEW_VALUE)
            log = run_with_dbt(meltano, emu, warehouse, dbt_schema, suffix, tokens)
            assert created_views(log) == {truth_first["forms"][0]["id"]: view}
            types = view_columns(warehouse, dbt_schema, view)
            runs = QuestionAddedRuns(
                added=added,
                truth=emu.truth(),
                columns_first=columns_first,
                columns_second=list(types),
                types_second=types,
                rows_second=warehouse.query(f'select * from "{dbt_schema}"."{view}"'),
                bookmark=parse_timestamp(responses_bookmarks(state)[ds_id]),
                truth_first=truth_first,
                batched_first=batched_first,
                batched_second=batched_at(warehouse),
            )
        yield runs
    finally:
        warehouse.drop()


def test_question_added_between_runs_is_a_new_column_named_from_its_label(question_added):
    assert NEW_COLUMN not in question_added.columns_first
    assert NEW_COLUMN in question_added.columns_second


def test_every_column_of_the_first_run_is_still_there_after_a_question_is_added(
    question_added,
):
    kept = [c for c in question_added.columns_second if c != NEW_COLUMN]
    assert kept == question_added.columns_first


def test_added_question_column_is_typed_by_its_question_type(question_added):
    # number: double on DuckDB (README, "Analytics with dbt"), not the answers' text.
    assert question_added.types_second[NEW_COLUMN] == "DOUBLE"


def test_added_question_column_holds_the_answer_on_its_response_and_null_on_the_others(
    question_added,
):
    (answer,) = [
        a
        for a in question_added.truth["answers"]
        if a["question_id"] == question_added.added.question_id
    ]
    cells = {row["response_id"]: row[NEW_COLUMN] for row in question_added.rows_second}
    assert set(cells) == {r["id"] for r in question_added.truth["responses"]}
    assert cells.pop(question_added.added.response_id) == float(answer["value_text"]) == NEW_VALUE
    assert set(cells.values()) == {None}


def test_run_after_a_question_is_added_reads_only_the_response_answering_it_again(
    question_added,
):
    reloaded = {
        response_id
        for response_id, loaded in question_added.batched_second.items()
        if loaded != question_added.batched_first.get(response_id)
    }
    # What an incremental run may read besides the edit: responses on the bookmark.
    on_bookmark = {
        r["id"]
        for r in question_added.truth_first["responses"]
        if parse_timestamp(r["updated_at"]) >= question_added.bookmark
    }
    assert question_added.added.response_id in reloaded
    assert reloaded <= {question_added.added.response_id} | on_bookmark
    assert question_added.added.response_id not in on_bookmark


# ------------------------------------------------------------------ installed in a project

README = REPO_ROOT / "README.md"
PACKAGE_QUESTIONS = 6  # plain forms: labels "Question 1"...


def readme_package_blocks() -> dict[str, str]:
    """The README's recipe for a dbt project of one's own (between its dbt-package
    markers): each code block's text by the file its first line names."""
    text = README.read_text(encoding="utf-8")
    recipe = text[text.index("<!-- dbt-package:start -->") : text.index("<!-- dbt-package:end -->")]
    blocks = re.findall(r"```(?:yaml|sql)\n(.*?)```", recipe, flags=re.DOTALL)
    named = {}
    for block in blocks:
        first_line = block.splitlines()[0]
        named[re.sub(r"^(#|--) ", "", first_line)] = block
    return named


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=tests", "-c", "user.email=tests@example.invalid", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"},
        check=True,
        capture_output=True,
        timeout=60,
    )


def package_repository(scratch: Path) -> str:
    """A git repository holding the working tree's dbt/ at dbt/, on branch main: what
    `dbt deps` clones in place of GitHub (offline, and the package as it is now, not
    as last committed). Its file:// URL."""
    repository = scratch / "tap-smartforms"
    shutil.copytree(
        REPO_ROOT / "dbt",
        repository / "dbt",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    git("init", "-q", "-b", "main", cwd=repository)
    git("add", "-A", cwd=repository)
    git("commit", "-q", "-m", "the smartforms dbt package", cwd=repository)
    return repository.as_uri()


@dataclass
class InstalledPackage:
    """A new dbt project installing the package as the README says, run on a DuckDB
    file that tap-smartforms and target-duckdb loaded."""

    project: Path
    model: str
    form_id: str
    truth: Truth
    test_log: str
    columns: list[str]
    rows: list[Row]


@pytest.fixture(scope="module")
def installed_package(
    meltano: MeltanoProject, tmp_path_factory: pytest.TempPathFactory
) -> InstalledPackage:
    scratch = tmp_path_factory.mktemp("dbt-installed")
    warehouse = DuckDB(scratch / "warehouse.duckdb")
    warehouse.schema = "forms_raw"  # not the package's default: the project's vars must say it
    forms = [
        FormSpec(responses=12, answers_per_response=PACKAGE_QUESTIONS, messy=False, seed=65),
        FormSpec(responses=9, answers_per_response=PACKAGE_QUESTIONS, messy=False, seed=66),
    ]
    with Emulator(forms=forms) as emu:
        config = emu.tap_config(token_store_path=str(scratch / "tokens.json"))
        meltano_run_into(meltano, warehouse, config, uuid.uuid4().hex[:12])
        truth = emu.truth()
    form_id = truth["forms"][1]["id"]

    blocks = readme_package_blocks()
    project = scratch / "analytics"
    (project / "models").mkdir(parents=True)
    packages = yaml.safe_load(blocks["packages.yml"])
    packages["packages"][0]["git"] = package_repository(scratch)
    (project / "packages.yml").write_text(yaml.safe_dump(packages), encoding="utf-8")
    readme_vars = yaml.safe_load(blocks["dbt_project.yml"])["vars"]
    readme_vars["smartforms_schema"] = warehouse.schema
    dbt_project = {
        "name": "analytics",
        "version": "1.0.0",
        "config-version": 2,
        "profile": "analytics",
        "vars": readme_vars,
    }
    (project / "dbt_project.yml").write_text(yaml.safe_dump(dbt_project), encoding="utf-8")
    profile = {"type": "duckdb", "path": str(warehouse.path), "schema": "analytics", "threads": 1}
    profiles = {"analytics": {"target": "dev", "outputs": {"dev": profile}}}
    (project / "profiles.yml").write_text(yaml.safe_dump(profiles), encoding="utf-8")
    (model_path,) = (name for name in blocks if name.startswith("models/"))
    model_sql = blocks[model_path].replace("<form id>", form_id)
    (project / model_path).write_text(model_sql, encoding="utf-8")

    def dbt(*args: str) -> str:
        completed = subprocess.run(
            [str(dbt_executable(meltano, "dbt-duckdb")), *args],
            capture_output=True,
            text=True,
            timeout=DBT_TIMEOUT_SECONDS,
            check=False,
            cwd=project,
            # git for `dbt deps`; nothing of the developer's shell (SMARTFORMS_SOURCE_SCHEMA...).
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(scratch),
                "GIT_CONFIG_NOSYSTEM": "1",
                "DBT_PROFILES_DIR": str(project),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            },
        )
        assert completed.returncode == 0, f"dbt {args[0]}: " + completed.stdout[-5000:]
        return completed.stdout

    dbt("deps")
    dbt("run")
    test_log = dbt("test")
    model = Path(model_path).stem
    rows = warehouse.query(f"select * from analytics.{model} order by response_id")
    columns = list(rows[0]) if rows else []
    return InstalledPackage(project, model, form_id, truth, test_log, columns, rows)


def test_dbt_deps_installs_the_package_from_git_as_the_readme_says(installed_package):
    installed = installed_package.project / "dbt_packages" / "smartforms"
    assert yaml.safe_load((installed / "dbt_project.yml").read_text())["name"] == "smartforms"
    assert (installed / "macros" / "smartforms_wide_form.sql").is_file()


def test_readme_model_has_one_row_per_response_of_its_form(installed_package):
    responses = sorted(
        r["id"]
        for r in installed_package.truth["responses"]
        if r["form_id"] == installed_package.form_id
    )
    assert [row["response_id"] for row in installed_package.rows] == responses


def test_readme_model_has_the_response_columns_then_one_per_question(installed_package):
    questions = [f"question_{n}" for n in range(1, PACKAGE_QUESTIONS + 1)]
    assert installed_package.columns == RESPONSE_COLUMNS + questions


def test_package_tests_pass_in_the_installing_project(installed_package):
    done = re.search(r"Done\. PASS=(\d+) WARN=0 ERROR=0", installed_package.test_log)
    assert done is not None, installed_package.test_log[-3000:]
    assert int(done.group(1)) > 0
    assert "PASS unique_stg_smartforms__responses_response_id" in installed_package.test_log
