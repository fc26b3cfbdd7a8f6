"""The test process's handle on the local fake Snowflake (fake_snowflake.py here).

Each call starts the wrapper in the Snowflake test virtualenv (venv.py), which patches
``snowflake.connector`` with fakesnow over DuckDB files in ``folder/db``: loads go
through MeltanoLabs target-snowflake, the dbt package through dbt-snowflake, and
queries through the connector, so every statement is Snowflake SQL as fakesnow reads it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.snowflake.venv import snowflake_python

WRAPPER = Path(__file__).with_name("fake_snowflake.py")
DATABASE = "SMARTFORMS_TEST"
SCHEMA = "SMARTFORMS"
TIMEOUT_SECONDS = 300
TARGET_CONFIG = {
    # Credentials are never checked by the fake; the target requires them.
    "account": "fake-account",
    "user": "fake-user",
    "password": "fake-password",
    "database": DATABASE,
    "default_target_schema": SCHEMA,
    "add_record_metadata": True,
    "timestamp_type": "TIMESTAMP_TZ",
    "hard_delete": False,
}
# fakesnow's own DB-API result path warns on every query; the warning says nothing
# about the SQL under test.
_QUIET = {"PYTHONWARNINGS": "ignore::UserWarning"}


@dataclass
class FakeSnowflake:
    folder: Path
    python: Path | None = None

    def _run(
        self, args: list[str], *, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """The wrapper's ``args[0]`` command, asserted to succeed (its output in the
        failure message; dbt logs to stdout)."""
        python = self.python or snowflake_python()
        command = [str(python), str(WRAPPER), args[0], "--db-path", str(self.folder / "db")]
        completed = subprocess.run(
            [*command, *args[1:]],
            input=None if input is None else input.encode(),
            capture_output=True,
            env={**os.environ, **_QUIET, **(env or {})},
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        output = (completed.stdout + completed.stderr).decode(errors="replace")
        assert completed.returncode == 0, output[-8000:]
        return completed

    def load(self, singer_messages: str) -> subprocess.CompletedProcess[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "target.json"
        config.write_text(json.dumps(TARGET_CONFIG))
        stage = ["--stage-dir", str(self.folder / "stage")]
        return self._run(["target", *stage, "--", "--config", str(config)], input=singer_messages)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows as JSON: values JSON has no type for come back as text."""
        completed = self._run(["query", "--database", DATABASE, "--sql", sql])
        rows: list[dict[str, Any]] = json.loads(completed.stdout)
        return rows

    def typed_query(self, sql: str) -> list[dict[str, Any]]:
        """Rows with the connector's Python types (date, datetime, float, bool...)."""
        completed = self._run(["query", "--typed", "--database", DATABASE, "--sql", sql])
        rows: list[dict[str, Any]] = pickle.loads(completed.stdout)
        return rows

    def table(self, stream: str) -> list[dict[str, Any]]:
        return self.query(f"select * from {SCHEMA}.{stream.upper()}")

    def dbt(self, commands: list[list[str]], env: dict[str, str]) -> str:
        """dbt-snowflake's CLI (``dbt <command>`` each, in one process), connected to
        this fake; its output."""
        args = [arg for command in commands for arg in [";", *command]][1:]
        done = self._run(["dbt", "--", *args], env=env)
        return done.stdout.decode() + done.stderr.decode()


class SnowflakeWarehouse:
    """The fake, read the way tests/test_meltano.py reads PostgreSQL and DuckDB: names
    lower-cased (Snowflake stores unquoted names in capitals), Python-typed values."""

    loader = "target-snowflake"
    schema = SCHEMA
    empty_text_is_null = False

    def __init__(self, folder: Path) -> None:
        self.fake = FakeSnowflake(folder)

    def env(self) -> dict[str, str]:
        return {}

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        assert not params, "the fake's query takes no parameters"
        return [{k.lower(): v for k, v in row.items()} for row in self.fake.typed_query(sql)]

    def drop(self) -> None:
        """The fake lives in the test's temporary folder."""
