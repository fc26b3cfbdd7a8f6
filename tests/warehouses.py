"""Warehouses the Meltano pipeline tests load into and read back (PostgreSQL of
meltano.yml, a DuckDB file), and comparing their rows with the emulator's truth:
shared by the pipeline modules (test_meltano, test_meltano_output_caps, test_dbt) so
no test module imports another."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import duckdb
import psycopg
import yaml
from psycopg.rows import dict_row

from tap_smartforms.timestamps import parse_timestamp
from tap_smartforms_emulator import COLUMNS, PRIMARY_KEYS, STREAMS
from tests.conftest import REPO_ROOT, MeltanoProject, config_secrets, plugin_env

Row = dict[str, Any]


class Warehouse(Protocol):
    loader: str
    placeholder: str
    empty_text_is_null: bool

    def env(self) -> dict[str, str]: ...

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]: ...

    def drop(self) -> None: ...


def loader_config(name: str) -> dict[str, Any]:
    """The loader's config in meltano.yml: the tests read PostgreSQL where Meltano loads it."""
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    loader = next(p for p in project["plugins"]["loaders"] if p["name"] == name)
    config: dict[str, Any] = loader["config"]
    return config


class Postgres:
    """A schema of its own per test run in the PostgreSQL server of meltano.yml."""

    loader = "target-postgres"
    placeholder = "%s"
    empty_text_is_null = False

    def __init__(self) -> None:
        self.schema = f"tap_smartforms_test_{uuid.uuid4().hex[:12]}"
        # The target needs a password even where the server trusts local users.
        self.password = os.environ.get("TARGET_POSTGRES_PASSWORD", "")
        config = loader_config(self.loader)
        self._connection = {
            "host": config["host"],
            "port": config["port"],
            "user": config["user"],
            "dbname": config["database"],
            "password": self.password or None,
        }

    def env(self) -> dict[str, str]:
        return {
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": self.schema,
            "TARGET_POSTGRES_PASSWORD": self.password,
        }

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        with psycopg.connect(**self._connection, row_factory=dict_row) as connection:
            return connection.execute(sql.format(schema=self.schema), params).fetchall()

    def drop(self) -> None:
        with psycopg.connect(**self._connection, autocommit=True) as connection:
            connection.execute(f'drop schema if exists "{self.schema}" cascade')


class DuckDB:
    """A DuckDB file of its own per test run."""

    loader = "target-duckdb"
    placeholder = "?"
    schema = "smartforms"
    # target-duckdb loads through CSV files, which write "" and null alike.
    empty_text_is_null = True

    def __init__(self, path: Path) -> None:
        self.path = path

    def env(self) -> dict[str, str]:
        return {
            "TARGET_DUCKDB_FILEPATH": str(self.path),
            "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": self.schema,
        }

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        # Read-only and closed at once: the target needs the file to itself when it runs.
        with duckdb.connect(str(self.path), read_only=True) as connection:
            cursor = connection.execute(sql.format(schema=self.schema), params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


def table_rows(warehouse: Warehouse) -> dict[str, list[Row]]:
    return {stream: warehouse.query(f"select * from {{schema}}.{stream}") for stream in STREAMS}


# ------------------------------------------------------------------ comparing rows


def key(row: Row, stream: str) -> tuple[Any, ...]:
    return tuple(row[name] for name in PRIMARY_KEYS[stream])


def keyed(rows: list[Row], stream: str) -> dict[tuple[Any, ...], Row]:
    return {key(row, stream): row for row in rows}


def same_value(loaded: Any, expected: Any) -> bool:
    """Whether a warehouse value is the record's value (warehouses give timestamps as
    naive UTC datetimes, and arrays and objects as JSON text or parsed JSON)."""
    if expected is None or loaded is None:
        return loaded is expected
    if isinstance(loaded, datetime):
        moment = loaded if loaded.tzinfo else loaded.replace(tzinfo=timezone.utc)
        return moment == parse_timestamp(expected)
    if isinstance(expected, list | dict) and isinstance(loaded, str):
        return json.loads(loaded) == expected
    return bool(loaded == expected)


def differing_columns(loaded: Row, expected: Row, stream: str, warehouse: Warehouse) -> list[str]:
    def as_loaded(value: Any) -> Any:
        return None if value == "" and warehouse.empty_text_is_null else value

    return [c for c in COLUMNS[stream] if not same_value(loaded[c], as_loaded(expected[c]))]


def meltano_run_into(
    meltano: MeltanoProject,
    warehouse: Warehouse,
    tap_config: dict[str, Any],
    state_suffix: str,
    *,
    then: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`meltano run tap-smartforms <loader> [then...]` with the tap configured by
    ``tap_config``, its state kept under ``state_suffix`` as Meltano keeps it between
    scheduled runs; asserts it succeeded unless not ``check``."""
    result = meltano.run(
        "run",
        "--state-id-suffix",
        state_suffix,
        "tap-smartforms",
        warehouse.loader,
        *then,
        env={**plugin_env("tap-smartforms", tap_config), **warehouse.env(), **(env or {})},
        secrets=config_secrets(tap_config),
    )
    assert result.returncode == 0 or not check, result.stderr[-8000:]
    return result
