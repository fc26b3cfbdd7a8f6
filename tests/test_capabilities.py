"""Only what works is declared: every capability `tap-smartforms --about` lists is run
against the emulator here and its effect checked. A capability the tap declares but
this module does not check fails the first test.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tap_smartforms_emulator import STREAMS, Emulator, FormSpec
from tests.conftest import TAP_TIMEOUT_SECONDS, tap_about

pytestmark = pytest.mark.e2e

Check = Callable[[Emulator, Any, Path], None]


def _ok(run: Any) -> Any:
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _catalog(run_tap: Any, config: dict[str, Any]) -> dict[str, Any]:
    catalog: dict[str, Any] = json.loads(_ok(run_tap(config, args=("--discover",))).stdout)
    return catalog


def check_about(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    about = json.loads(tap_about("json"))
    assert about["name"] == "tap-smartforms"
    assert "data_sources" in about["settings"]["properties"]
    assert "Capabilities" in tap_about("markdown")


def check_discover(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    catalog = _catalog(run_tap, emu.tap_config())
    assert {s["tap_stream_id"] for s in catalog["streams"]} == set(STREAMS)


def check_catalog(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    config = emu.tap_config()
    catalog = _catalog(run_tap, config)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if not entry["breadcrumb"]:
                entry["metadata"]["selected"] = stream["tap_stream_id"] != "attachments"
    run = _ok(run_tap(config, catalog=catalog))
    assert run.records("attachments") == []
    assert not any(m.get("stream") == "attachments" for m in run.messages)
    assert all(run.records(s) for s in STREAMS if s != "attachments")


def check_state(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    config = emu.tap_config(page_size=10)
    first = _ok(run_tap(config))
    ds = emu.data_source_ids[0]
    new_id = emu.insert_response(ds)
    second = _ok(run_tap(config, state=first.states[-1]))
    read_again = {r["id"] for r in second.records("responses")}
    assert new_id in read_again
    assert len(read_again) < len(first.records("responses")) / 2, "incremental from the state"


def check_stream_maps(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    maps = {"responses": {"status": "__NULL__", "id_upper": "id.upper()"}}
    run = _ok(run_tap(emu.tap_config(stream_maps=maps)))
    responses = run.records("responses")
    assert responses
    assert all("status" not in r and r["id_upper"] == r["id"].upper() for r in responses)


def check_schema_flattening(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    plain = _ok(run_tap(emu.tap_config()))
    flat = _ok(run_tap(emu.tap_config(flattening_enabled=True, flattening_max_depth=1)))
    schema = next(
        m["schema"] for m in flat.messages if m["type"] == "SCHEMA" and m["stream"] == "responses"
    )
    # The SDK flattens a nested list into JSON text in one column.
    assert schema["properties"]["created_issues"]["type"] == ["string", "null"]
    originals = {r["id"]: r["created_issues"] for r in plain.records("responses")}
    flattened = flat.records("responses")
    assert any(originals[r["id"]] for r in flattened), "some responses created issues"
    for record in flattened:
        value = record["created_issues"]
        assert (json.loads(value) if value is not None else None) == originals[record["id"]]


def check_batch(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": (scratch / "batches").as_uri()},
    }
    run = _ok(run_tap(emu.tap_config(batch_config=batch_config)))
    assert not run.records("responses")
    truth = emu.truth()
    for stream in STREAMS:
        files = [
            Path(urlsplit(url).path)
            for m in run.messages
            if m["type"] == "BATCH" and m["stream"] == stream
            for url in m["manifest"]
        ]
        count = 0
        for path in files:
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                count += sum(1 for _ in lines)
        assert count == len(truth[stream]), stream


def check_activate_version(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    run = _ok(run_tap(emu.tap_config(emit_activate_version_messages=True)))
    activated = {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}
    assert activated == {"forms", "questions"}


def check_structured_logging(emu: Emulator, run_tap: Any, scratch: Path) -> None:
    # The SDK's way to switch its log format: a logging config naming its
    # StructuredFormatter, in SINGER_SDK_LOG_CONFIG.
    log_config = scratch / "logging.yml"
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"json": {"()": "singer_sdk.logging.StructuredFormatter"}},
                "handlers": {
                    "stderr": {
                        "class": "logging.StreamHandler",
                        "formatter": "json",
                        "stream": "ext://sys.stderr",
                    }
                },
                "root": {"level": "INFO", "handlers": ["stderr"]},
            }
        ),
        encoding="utf-8",
    )
    config_path = scratch / "config.json"
    config_path.write_text(
        json.dumps(emu.tap_config(token_store_path=str(scratch / "tokens.json"))),
        encoding="utf-8",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "SINGER_SDK_LOG_CONFIG": str(log_config)},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) > 5
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(entry, dict) for entry in parsed)
    assert any("data source" in json.dumps(entry) for entry in parsed), "the tap's own lines"


CHECKS: dict[str, Check] = {
    "about": check_about,
    "discover": check_discover,
    "catalog": check_catalog,
    "state": check_state,
    "stream-maps": check_stream_maps,
    "schema-flattening": check_schema_flattening,
    "batch": check_batch,
    "activate-version": check_activate_version,
    "structured-logging": check_structured_logging,
}


def declared_capabilities() -> list[str]:
    capabilities: list[str] = json.loads(tap_about("json"))["capabilities"]
    return capabilities


def test_every_declared_capability_is_checked_here():
    assert set(declared_capabilities()) <= set(CHECKS), "a declared capability has no check"


@pytest.mark.parametrize("capability", declared_capabilities())
def test_declared_capability_works(capability, emulator, run_tap, tmp_path):
    emu = emulator([FormSpec(responses=60, seed=71), FormSpec(responses=25, seed=72)])
    CHECKS[capability](emu, run_tap, tmp_path)


def test_checks_are_not_vacuous_a_broken_map_is_noticed(emulator, run_tap, tmp_path):
    # One check, fed a run where the capability is absent, fails.
    emu = emulator([FormSpec(responses=10, seed=73)])

    def without_maps(config: dict[str, Any], **kwargs: Any) -> Any:
        return run_tap({k: v for k, v in copy.deepcopy(config).items() if k != "stream_maps"})

    with pytest.raises(AssertionError):
        check_stream_maps(emu, without_maps, tmp_path)
