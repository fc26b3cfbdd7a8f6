"""The Singer SDK private API the tap relies on (tap_smartforms/sdk_bridge.py), pinned.

An SDK upgrade that renames, re-signs or changes one of these fails here first,
with a message naming what changed, rather than silently in a sync.
"""

from __future__ import annotations

import datetime
import inspect
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError

from tap_smartforms import sdk_bridge

# What sdk_bridge was written against (singer-sdk 0.54.9). Annotations are compared
# as the SDK spells them; a change there is worth a look too.
PINNED_SIGNATURES = {
    (Stream, "_sync_records"): (
        "(self, context: 'types.Context | None' = None, *, write_messages: 'bool' = True)"
        " -> 't.Generator[dict, t.Any, t.Any]'"
    ),
    (Stream, "_write_starting_replication_value"): (
        "(self, context: 'types.Context | None') -> 'None'"
    ),
    (Stream, "_write_replication_key_signpost"): (
        "(self, context: 'types.Context | None', "
        "value: 'datetime.datetime | str | float | None') -> 'None'"
    ),
    (Stream, "_increment_stream_state"): (
        "(self, latest_record: 'types.Record', *, context: 'types.Context | None' = None) -> 'None'"
    ),
    (Stream, "_finalize_state"): "(self, state: 'dict | None' = None) -> 'None'",
    (Stream, "_write_state_message"): "(self) -> 'None'",
    (Stream, "_check_max_record_limit"): "(self, current_record_index: 'int') -> 'None'",
    (Stream, "_write_schema_message"): "(self) -> 'None'",
    (Stream, "_write_record_message"): "(self, record: 'types.Record') -> 'None'",
    (Stream, "_generate_record_messages"): (
        "(self, record: 'types.Record') -> 't.Generator[singer.RecordMessage, None, None]'"
    ),
    (Stream, "_write_activate_version_message"): ("(self, full_table_version: 'int') -> 'None'"),
    (Tap, "_validate_config"): "(self, *, raise_errors: 'bool' = True) -> 'list[str]'",
    (Tap, "_handle_termination"): "(self, signum: 'int', frame: 'FrameType | None') -> 'None'",
    (Tap, "sync_all"): "(self) -> 'None'",
}


@pytest.mark.parametrize(
    ("owner", "name"), list(PINNED_SIGNATURES), ids=[n for _, n in PINNED_SIGNATURES]
)
def test_private_sdk_signature_is_as_pinned(owner: type, name: str) -> None:
    method = getattr(owner, name, None)
    assert method is not None, (
        f"singer-sdk no longer has {owner.__name__}.{name}: sdk_bridge.py relies on it"
    )
    found = str(inspect.signature(method))
    assert found == PINNED_SIGNATURES[owner, name], (
        f"singer-sdk changed {owner.__name__}.{name}{PINNED_SIGNATURES[owner, name]} "
        f"to {name}{found}: check its use in sdk_bridge.py"
    )


def test_private_sdk_attributes_exist() -> None:
    tap = _ProbeTap()
    stream = tap.streams["probe"]
    for name in ("_initialized_at", "_stream_version", "_tap"):
        assert hasattr(stream, name), f"singer-sdk Stream has no {name}: see sdk_bridge.py"
    assert hasattr(stream.state_manager, "is_flushed"), "StreamStateManager lost is_flushed"


# --- Behaviours --------------------------------------------------------------------


class _ProbeStream(Stream):
    name = "probe"
    primary_keys = ("id",)
    replication_key = "updated_at"
    is_sorted = False
    schema = {  # noqa: RUF012 - the SDK reads it as a class attribute
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }

    def get_records(self, context: Any) -> Iterator[dict[str, Any]]:
        return iter(())


class _ProbeTap(Tap):
    name = "tap-probe"
    config_jsonschema = {"type": "object", "properties": {}}  # noqa: RUF012

    def discover_streams(self) -> list[Stream]:
        return [_ProbeStream(self)]


PARTITION = {"data_source_id": "ds-1"}


def _stream() -> Stream:
    stream = _ProbeTap().streams["probe"]
    sdk_bridge.write_starting_bookmark(stream, PARTITION)
    return stream


def _bookmark(stream: Stream) -> Any:
    return stream.get_context_state(PARTITION).get("replication_key_value")


def test_unsorted_increments_keep_the_newest_as_progress_marker_until_finalized() -> None:
    stream = _stream()
    for updated_at in ("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00", "2026-01-01"):
        sdk_bridge.increment_bookmark(stream, {"id": "r", "updated_at": updated_at}, PARTITION)
    state = stream.get_context_state(PARTITION)
    assert state["progress_markers"]["replication_key_value"] == "2026-01-03T00:00:00+00:00"
    assert _bookmark(stream) is None, "an unsorted stream's bookmark moved before finalize"
    sdk_bridge.finalize_bookmark(stream, state)
    assert _bookmark(stream) == "2026-01-03T00:00:00+00:00"
    assert "progress_markers" not in state


def test_discarded_progress_markers_leave_the_bookmark_where_it_was() -> None:
    stream = _stream()
    sdk_bridge.increment_bookmark(stream, {"id": "r", "updated_at": "2026-01-03"}, PARTITION)
    sdk_bridge.discard_progress_markers(stream, PARTITION)
    sdk_bridge.finalize_bookmark(stream, stream.get_context_state(PARTITION))
    assert _bookmark(stream) is None


def test_signpost_caps_the_finalized_bookmark() -> None:
    stream = _stream()
    signpost = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    sdk_bridge.write_signpost(stream, PARTITION, signpost)
    sdk_bridge.increment_bookmark(
        stream, {"id": "r", "updated_at": "2026-01-09T00:00:00+00:00"}, PARTITION
    )
    sdk_bridge.finalize_bookmark(stream, stream.get_context_state(PARTITION))
    assert _bookmark(stream) == "2026-01-02T00:00:00.000000+00:00"


def test_unsorted_stream_warning_text_is_what_the_filter_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = _stream()
    with caplog.at_level(logging.WARNING, logger="singer_sdk"):
        sdk_bridge.increment_bookmark(stream, {"id": "r", "updated_at": "2026-01-03"}, PARTITION)
    assert any(
        record.getMessage().startswith(sdk_bridge.UNSORTED_STREAM_WARNING)
        for record in caplog.records
    ), "the SDK's unsorted-stream warning changed: update UNSORTED_STREAM_WARNING"


def _messages(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_state_is_written_once_per_change(capsys: pytest.CaptureFixture[str]) -> None:
    stream = _stream()
    capsys.readouterr()
    sdk_bridge.mark_state_unflushed(stream)
    sdk_bridge.write_state(stream)
    sdk_bridge.write_state(stream)
    assert [m["type"] for m in _messages(capsys)] == ["STATE"]
    sdk_bridge.increment_bookmark(stream, {"id": "r", "updated_at": "2026-01-03"}, PARTITION)
    sdk_bridge.write_state(stream)
    assert _messages(capsys) == [], "STATE written while the state manager says flushed"
    sdk_bridge.mark_state_unflushed(stream)
    sdk_bridge.write_state(stream)
    [state] = _messages(capsys)
    progress = state["value"]["bookmarks"]["probe"]["partitions"][0]["progress_markers"]
    assert progress["replication_key_value"] == "2026-01-03"


def test_messages_written_outside_the_sdk_loop(capsys: pytest.CaptureFixture[str]) -> None:
    stream = _stream()
    capsys.readouterr()
    version = sdk_bridge.full_table_version(stream)
    assert version == stream._tap.initialized_at // 1000
    assert sdk_bridge.table_version(stream) is None
    sdk_bridge.set_table_version(stream, version)
    assert sdk_bridge.table_version(stream) == version
    sdk_bridge.write_schema(stream)
    sdk_bridge.write_record_the_sdk_way(stream, {"id": "r", "updated_at": "2026-01-03"})
    sdk_bridge.write_activate_version(stream, version)
    schema, record, activate = _messages(capsys)
    assert (schema["type"], schema["stream"], schema["key_properties"]) == (
        "SCHEMA",
        "probe",
        ["id"],
    )
    assert (record["type"], record["record"]["id"], record["version"]) == ("RECORD", "r", version)
    assert (activate["type"], activate["version"]) == ("ACTIVATE_VERSION", version)
    [message] = list(sdk_bridge.sdk_record_messages(stream, {"id": "s", "updated_at": None}))
    assert (message.stream, message.record["id"], message.version) == ("probe", "s", version)


def test_record_limit_stops_the_sync_past_the_limit() -> None:
    stream = _stream()
    stream.ABORT_AT_RECORD_COUNT = 2
    sdk_bridge.check_record_limit(stream, 1)
    with pytest.raises(Exception) as raised:
        sdk_bridge.check_record_limit(stream, 2)
    assert "MaxRecordsLimit" in type(raised.value.__cause__).__name__


# --- The hooks BridgedTap and PageLoopStream offer ---------------------------------


class _HookedTap(sdk_bridge.BridgedTap):
    name = "tap-hooked"
    config_jsonschema = {"type": "object", "properties": {}}  # noqa: RUF012
    problems: list[str] = []  # noqa: RUF012
    calls: list[str] = []  # noqa: RUF012

    def config_problems(self) -> list[str]:
        return self.problems

    def around_sync_all(self, sync_all: Any) -> None:
        self.calls.append("before")
        sync_all()
        self.calls.append("after")

    def discover_streams(self) -> list[Stream]:
        return [_LoopStream(self)]


class _LoopStream(sdk_bridge.PageLoopStream):
    name = "loop"
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}  # noqa: RUF012

    def get_records(self, context: Any) -> Iterator[dict[str, Any]]:
        raise AssertionError("the SDK called get_records: _sync_records was not overridden")

    def sync_pages(self, *, write_messages: bool) -> None:
        _HookedTap.calls.append(f"sync_pages(write_messages={write_messages})")


def test_config_problems_replace_the_sdks_validation() -> None:
    _HookedTap.problems = ["data_sources: required"]
    try:
        with pytest.raises(ConfigValidationError, match="data_sources: required"):
            _HookedTap(config={})
    finally:
        _HookedTap.problems = []


def test_sync_all_runs_around_sync_all_and_the_page_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _HookedTap.calls = []
    _HookedTap(config={}).sync_all()
    capsys.readouterr()
    assert _HookedTap.calls == ["before", "sync_pages(write_messages=True)", "after"]
