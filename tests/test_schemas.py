"""Every stream's schema loads cleanly into Snowflake (and PostgreSQL, DuckDB).

Snowflake folds unquoted names to upper case and caps identifiers at 255
characters; its targets create one column per property and fail (or create a
second column) when a column's type changes. So for every stream, in each form a
target may see it (the discovered catalog, the SCHEMA messages of a sync, and
those of a sync with the SDK's schema flattening on): short snake_case names, no
two alike after case folding, one type per column, and every value of that type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tap_smartforms.timestamps import parse_timestamp
from tap_smartforms_emulator import STREAMS, Emulator, FormSpec
from tests.conftest import tap_runner

SNOWFLAKE_MAX_IDENTIFIER = 255
SNAKE_CASE = re.compile(r"[a-z_][a-z0-9_]*")
VIEWS = ("discovered", "emitted", "flattened")
PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


@dataclass
class View:
    """The schemas (every SCHEMA message, in order) and records of each stream."""

    schemas: dict[str, list[dict[str, Any]]]
    records: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, View]:
    workdir = tmp_path_factory.mktemp("schemas")
    run = tap_runner(workdir)
    forms = [FormSpec(responses=60, seed=71), FormSpec(responses=40, seed=72)]
    with Emulator(forms=forms) as emu:
        catalog_run = run(emu.tap_config(), args=("--discover",))
        assert catalog_run.returncode == 0, catalog_run.stderr
        syncs = {}
        for name, options in (("emitted", {}), ("flattened", {"flattening_enabled": True})):
            config = emu.tap_config(
                page_size=25,
                token_store_path=str(workdir / f"tokens-{name}.json"),
                flattening_max_depth=10,
                **options,
            )
            syncs[name] = run(config)
            assert syncs[name].returncode == 0, syncs[name].stderr

    catalog = json.loads(catalog_run.stdout)
    result = {
        "discovered": View(
            schemas={s["tap_stream_id"]: [s["schema"]] for s in catalog["streams"]},
            records={},
        )
    }
    for name, sync in syncs.items():
        schemas: dict[str, list[dict[str, Any]]] = {}
        for message in sync.messages:
            if message["type"] == "SCHEMA":
                schemas.setdefault(message["stream"], []).append(message["schema"])
        result[name] = View(schemas, {stream: sync.records(stream) for stream in STREAMS})
    return result


def non_null_types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return ({declared} if isinstance(declared, str) else set(declared)) - {"null"}


def type_problems(schema: dict[str, Any], path: str) -> list[str]:
    """Where a schema lets a value take more than one type (or none)."""
    problems = []
    if "anyOf" in schema or "oneOf" in schema:
        problems.append(f"{path}: anyOf/oneOf")
    types = non_null_types(schema)
    if len(types) != 1:
        problems.append(f"{path}: types {sorted(types)}")
    if "array" in types:
        items = schema.get("items")
        if not isinstance(items, dict):
            problems.append(f"{path}: array without an item schema")
        else:
            problems += type_problems(items, f"{path}[]")
    if "object" in types:
        for name, child in schema.get("properties", {}).items():
            problems += type_problems(child, f"{path}.{name}")
    return problems


def value_problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Where a value is not of its schema's one type."""
    if value is None:
        return [] if "null" in schema.get("type", []) else [f"{path}: null"]
    (kind,) = non_null_types(schema)
    if isinstance(value, bool) and kind != "boolean":
        return [f"{path}: boolean for {kind}"]
    if not isinstance(value, PYTHON_TYPES[kind]):
        return [f"{path}: {type(value).__name__} for {kind}"]
    if schema.get("format") == "date-time":
        try:
            parse_timestamp(value)
        except ValueError:
            return [f"{path}: not a date-time"]
    if kind == "array":
        return [p for item in value for p in value_problems(item, schema["items"], f"{path}[]")]
    if kind == "object":
        properties = schema.get("properties", {})
        return [
            problem
            for name, item in value.items()
            for problem in (
                value_problems(item, properties[name], f"{path}.{name}")
                if name in properties
                else [f"{path}.{name}: not in the schema"]
            )
        ]
    return []


def columns(view: View, stream: str) -> list[str]:
    return list(view.schemas[stream][-1]["properties"])


@pytest.mark.parametrize("view", VIEWS)
def test_every_stream_has_a_schema(views, view):
    assert set(views[view].schemas) == set(STREAMS)


@pytest.mark.parametrize("view", VIEWS)
def test_table_and_column_names_fit_snowflake_identifiers(views, view):
    for stream in STREAMS:
        assert len(stream) <= SNOWFLAKE_MAX_IDENTIFIER
        too_long = [c for c in columns(views[view], stream) if len(c) > SNOWFLAKE_MAX_IDENTIFIER]
        assert too_long == [], stream


@pytest.mark.parametrize("view", VIEWS)
def test_names_are_snake_case_so_no_target_needs_to_quote_them(views, view):
    for stream in STREAMS:
        assert SNAKE_CASE.fullmatch(stream), stream
        odd = [c for c in columns(views[view], stream) if not SNAKE_CASE.fullmatch(c)]
        assert odd == [], stream


@pytest.mark.parametrize("view", VIEWS)
def test_no_two_names_clash_after_case_folding(views, view):
    assert len({s.upper() for s in views[view].schemas}) == len(views[view].schemas)
    for stream in STREAMS:
        names = columns(views[view], stream)
        assert len({name.upper() for name in names}) == len(names), stream


@pytest.mark.parametrize("view", VIEWS)
def test_every_column_has_exactly_one_type(views, view):
    for stream in STREAMS:
        problems = [
            problem
            for name, schema in views[view].schemas[stream][-1]["properties"].items()
            for problem in type_problems(schema, f"{stream}.{name}")
        ]
        assert problems == []


@pytest.mark.parametrize("view", ["emitted", "flattened"])
def test_a_stream_schema_never_changes_during_a_sync(views, view):
    for stream in STREAMS:
        schemas = views[view].schemas[stream]
        assert all(schema == schemas[0] for schema in schemas), stream


@pytest.mark.parametrize("view", ["emitted", "flattened"])
def test_every_value_has_its_column_type(views, view):
    for stream in STREAMS:
        records = views[view].records[stream]
        assert records, f"{stream}: no records"
        schema = views[view].schemas[stream][-1]
        problems = [
            problem
            for record in records
            for problem in value_problems(record, schema | {"type": "object"}, stream)
        ]
        assert problems[:5] == []
