"""Run MeltanoLabs target-snowflake, or a query, against a local fake Snowflake.

Test-only; runs in the Snowflake test virtualenv (requirements.txt here), never in
the tap's. fakesnow patches ``snowflake.connector`` in this process and keeps each
database as a DuckDB file under ``--db-path``. target-snowflake 0.20.x loads every
stream through the user stage ``@~`` (PUT, then MERGE or COPY INTO reading the stage,
then REMOVE), none of which fakesnow 0.12.1 runs, so ``_StageShim`` stands in for the
stage with a local folder (README, "Snowflake", says what it covers):

* ``PUT file://<f> '@~/<path>'`` copies the file to ``<stage>/<path>/``;
* a read of ``'@~/<path>'`` becomes a subquery over DuckDB's ``read_json_objects``
  of those files, its ``$1`` the staged JSON object and ``SEQ8()`` its row number;
* ``COPY INTO t (cols) FROM (SELECT ...)`` becomes ``INSERT INTO t (cols) SELECT ...``;
* ``REMOVE``, ``CREATE``/``DROP FILE FORMAT`` answer with a status row.

    python fake_snowflake.py target --db-path D --stage-dir S -- --config target.json < singer
    python fake_snowflake.py query --db-path D --database DB --sql "select ..."  # JSON rows
    python fake_snowflake.py dbt --db-path D -- run --project-dir dbt ... ';' test ...
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import fakesnow
from fakesnow.cursor import FakeSnowflakeCursor

_PUT = re.compile(r"^\s*put\s+'?file://(?P<file>[^'\s]+)'?\s+'@~/(?P<path>[^']+)'", re.I)
_STAGE_READ = re.compile(r"'@~/(?P<path>[^']+)'\s*(?:\(\s*file_format\s*=>\s*[^)]*\))?", re.I)
_COPY = re.compile(
    r"^\s*copy\s+into\s+(?P<table>\S+)\s*(?P<columns>\([^)]*\))\s+from\s+\((?P<select>.*)\)"
    r"\s*file_format\s*=\s*\(.*\)\s*$",
    re.I | re.S,
)
_MERGE_DEDUP = re.compile(
    r"\(select (?P<casts>.+?) from (?P<stage>'@~/[^']+'\s*\(file_format\s*=>\s*[^)]*\))\s*"
    r"qualify row_number\(\) over \(partition by (?P<keys>[^)]*?) order by seq8\(\) desc\)"
    r"\s*=\s*1\s*\)\s*s\s",
    re.I | re.S,
)
_TABLE_OF_MERGE = re.compile(r"^\s*merge\s+into\s+(?P<table>\S+)", re.I)
_STATUS_ONLY = (
    r"^\s*remove\s+'@~/",
    r"^\s*create\s+or\s+replace\s+file\s+format\b",
    r"^\s*drop\s+file\s+format\b",
)
_STAGED = "_STAGED"
_STAGED_SEQ = "_STAGED_SEQ"


class _StageShim:
    """Wraps ``FakeSnowflakeCursor.execute`` to emulate the user stage with a folder."""

    def __init__(self, stage_dir: Path) -> None:
        self.stage_dir = stage_dir

    def install(self) -> None:
        original = FakeSnowflakeCursor.execute
        shim = self

        def execute(
            cursor: FakeSnowflakeCursor, command: str, params: Any = None, *args: Any, **kw: Any
        ) -> FakeSnowflakeCursor:
            if any(re.match(pattern, command, re.I) for pattern in _STATUS_ONLY):
                return original(cursor, "select 'ok' as status")
            if put := _PUT.match(_inline(command, params)):
                return shim._put(cursor, original, Path(put["file"]), put["path"])
            if copy := _COPY.match(command):
                command = f"insert into {copy['table']} {copy['columns']} {copy['select']}"
            if "'@~/" in command:
                command = shim._read_stage(command)
            if merge := _TABLE_OF_MERGE.match(command):
                # The target connects with a database but no current schema; fakesnow's
                # MERGE needs one.
                parts = merge["table"].split(".")
                if len(parts) == 3:
                    original(cursor, f"use schema {parts[0]}.{parts[1]}")
            return original(cursor, command, params, *args, **kw)

        FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]

    def _put(self, cursor: Any, original: Any, source: Path, path: str) -> Any:
        folder = self.stage_dir / path
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / source.name)
        return original(cursor, f"select '{source.name}' as source, 'UPLOADED' as status")

    def _read_stage(self, command: str) -> str:
        # DuckDB cannot bind MERGE's deduplicating QUALIFY inside the FULL OUTER JOIN
        # fakesnow makes of MERGE (its keys resolve as lateral references to the
        # target table): deduplicate over a derived table of the staged rows instead.
        command = _MERGE_DEDUP.sub(
            lambda m: (
                f"(select * from (select {m['casts']}, {_STAGED_SEQ} from {m['stage']}) "
                f"qualify row_number() over (partition by {m['keys']} "
                f"order by {_STAGED_SEQ} desc) = 1) s "
            ),
            command,
        )

        def subquery(match: re.Match[str]) -> str:
            files = (self.stage_dir / match["path"]).as_posix().rstrip("/") + "/*"
            return (
                f"(select json as {_STAGED}, row_number() over () as {_STAGED_SEQ} "
                f"from read_json_objects('{files}'))"
            )

        command = _STAGE_READ.sub(subquery, command)
        command = re.sub(r"\$1:", f"{_STAGED}:", command)
        return re.sub(r"\bseq8\(\)", _STAGED_SEQ, command, flags=re.I)


# Snowflake functions the dbt package calls that fakesnow 0.12.1 does not translate,
# as DuckDB temporary macros of the same name and meaning (README, "Snowflake").
_MISSING_FUNCTIONS = (
    "create or replace temp macro try_to_timestamp_tz(text) as try_cast(text as timestamptz)",
)


def _add_missing_functions() -> None:
    """Defines ``_MISSING_FUNCTIONS`` on each fake connection before its first statement."""
    original = FakeSnowflakeCursor.execute
    # Holding each connection keeps its id from being reused by a later one (dbt
    # closes and opens connections between commands), which would then go unprepared.
    prepared: dict[int, Any] = {}

    def execute(cursor: FakeSnowflakeCursor, *args: Any, **kw: Any) -> FakeSnowflakeCursor:
        duck = cursor._duck_conn
        if id(duck) not in prepared:
            for statement in _MISSING_FUNCTIONS:
                duck.execute(statement)
            prepared[id(duck)] = duck
        return original(cursor, *args, **kw)

    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]


def _inline(command: str, params: Any) -> str:
    """PUT's file name arrives as a bound parameter; the shim needs it in the text."""
    if isinstance(params, dict) and re.match(r"^\s*put\b", command, re.I):
        for name, value in params.items():
            command = command.replace(f"%({name})s", f"'{value}'")
    return command


def run_target(db_path: Path, stage_dir: Path, target_args: list[str]) -> None:
    import singer_sdk.target_base  # noqa: PLC0415 - after nothing else needs patching
    from target_snowflake.target import TargetSnowflake  # noqa: PLC0415

    # Streams load in parallel by default; fakesnow's MERGE uses a temporary table of
    # one name, which collides across threads.
    singer_sdk.target_base._MAX_PARALLELISM = 1  # type: ignore[attr-defined]
    db_path.mkdir(parents=True, exist_ok=True)
    _StageShim(stage_dir).install()
    with fakesnow.patch(db_path=db_path):
        TargetSnowflake.cli(target_args, standalone_mode=False)


def run_query(db_path: Path, database: str, sql: str, *, typed: bool) -> None:
    """Rows as JSON (values as text where JSON has no type), or pickled with the
    connector's own Python types (date, datetime, Decimal...) when ``typed``."""
    import snowflake.connector  # noqa: PLC0415

    _add_missing_functions()
    with fakesnow.patch(db_path=db_path):
        connection = snowflake.connector.connect(database=database)
        cursor = connection.cursor(snowflake.connector.DictCursor)
        rows = cursor.execute(sql).fetchall()
    if typed:
        sys.stdout.buffer.write(pickle.dumps(rows))
    else:
        json.dump(rows, sys.stdout, default=str)


def run_dbt(db_path: Path, dbt_args: list[str]) -> None:
    """dbt-snowflake's own CLI, its connections answered by the fake: one or more dbt
    commands separated by ``;`` (one process: importing dbt takes most of a command's
    time), stopping at the first that fails."""
    from dbt.cli.main import dbtRunner  # noqa: PLC0415

    commands: list[list[str]] = [[]]
    for arg in dbt_args:
        if arg == ";":
            commands.append([])
        else:
            commands[-1].append(arg)
    _add_missing_functions()
    with fakesnow.patch(db_path=db_path):
        for command in commands:
            if not dbtRunner().invoke(command).success:
                sys.exit(1)


def main() -> None:
    argv = sys.argv[1:]
    ours, rest = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["target", "query", "dbt"])
    parser.add_argument("--db-path", type=Path, required=True)
    parser.add_argument("--stage-dir", type=Path)
    parser.add_argument("--database")
    parser.add_argument("--sql")
    parser.add_argument("--typed", action="store_true")
    args = parser.parse_args(ours)
    if args.command == "target":
        run_target(args.db_path, args.stage_dir, rest)
    elif args.command == "dbt":
        run_dbt(args.db_path, rest)
    else:
        run_query(args.db_path, args.database, args.sql, typed=args.typed)


if __name__ == "__main__":
    main()
