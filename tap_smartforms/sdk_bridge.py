"""Every use of the Singer SDK's private API, in one place.

The tap goes around the SDK where the SDK has no public hook for what it needs:

* its own config validation (the SDK's messages quote values, secrets included);
* work around every sync (a run summary, waiting for token refreshes in flight) and
  on SIGINT/SIGTERM (no new token refresh);
* the page loop, which replaces the SDK's per-record, per-partition
  ``Stream._sync_records`` (streams.py says why) and so must do the loop's state
  bookkeeping itself, with the SDK's own methods;
* RECORD, SCHEMA, BATCH and ACTIVATE_VERSION messages written a page at a time,
  outside the SDK's loop, again with the SDK's own methods (output.py says why).

Nothing else in the tap touches an underscore name of the SDK: it calls the
functions and subclasses the classes below. tests/unit/test_sdk_bridge.py pins
each private signature and the behaviours relied on, so an SDK upgrade that
changes one fails there first, naming what changed.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Generator, Iterator
from types import FrameType
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._batch import BatchConfig, SDKBatchMessage
from singer_sdk.helpers.types import Context, Record
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

__all__ = [
    "BatchConfig",
    "BridgedTap",
    "PageLoopStream",
    "SDKBatchMessage",
    "check_record_limit",
    "discard_progress_markers",
    "finalize_bookmark",
    "full_table_version",
    "increment_bookmark",
    "mark_state_unflushed",
    "sdk_record_messages",
    "set_table_version",
    "silence_unsorted_stream_warning",
    "table_version",
    "write_activate_version",
    "write_message",
    "write_record_the_sdk_way",
    "write_schema",
    "write_signpost",
    "write_starting_bookmark",
    "write_state",
]


class BridgedTap(Tap):
    """A Tap whose private hooks call public methods of ours."""

    def config_problems(self) -> list[str]:
        """Every problem with ``self.config``, one line each, never quoting a value."""
        raise NotImplementedError

    def on_termination_signal(self) -> None:
        """Called on SIGINT/SIGTERM before the SDK writes STATE and exits 0."""

    def around_sync_all(self, sync_all: Callable[[], None]) -> None:
        """Runs the SDK's ``sync_all`` (every stream, then the final STATE)."""
        sync_all()

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK's JSON-schema validation quotes the offending values (secrets
        # included); ours name the entry and setting only.
        errors = self.config_problems()
        if errors and raise_errors:
            raise ConfigValidationError(
                f"{self.name}: invalid config: {errors[0]}", errors=errors, schema={}
            )
        for error in errors:
            self.logger.warning("Config: %s", error)
        return errors

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK has no hook before its handler writes STATE and raises
        # SystemExit(0) in the main thread; its handler is kept.
        self.on_termination_signal()
        super()._handle_termination(signum, frame)

    @override  # type: ignore[misc]  # final for typing only, see below
    def sync_all(self) -> None:
        # Tap.sync_all is @final for typing only, and the one place that runs after
        # every stream's final STATE: no public hook does.
        self.around_sync_all(super().sync_all)


class PageLoopStream(Stream):
    """A Stream whose records are written by ``sync_pages`` rather than by the SDK's
    per-record loop (``Stream._sync_records``)."""

    def sync_pages(self, *, write_messages: bool) -> None:
        """Write every partition's records and STATE."""
        raise NotImplementedError

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[Record, Any, Any]:
        # Stream.sync calls this once, without a context, for a stream with
        # partitions; sync_pages walks them all at once.
        self.sync_pages(write_messages=write_messages)
        yield from ()


# --- State bookkeeping the SDK's loop would do (Stream._sync_records) -------------


def write_starting_bookmark(stream: Stream, partition: Context) -> None:
    """Record the partition's starting value (bookmark or start_date) in its state,
    where ``get_starting_timestamp`` reads it."""
    stream._write_starting_replication_value(partition)


def write_signpost(
    stream: Stream, partition: Context, value: datetime.datetime | str | float | None
) -> None:
    """Cap the partition's bookmark at ``value``: the SDK's own ``sync`` writes a
    signpost for the stream as a whole, which no partition reads."""
    stream._write_replication_key_signpost(partition, value)


def increment_bookmark(stream: Stream, record: Record, partition: Context) -> None:
    """Advance the partition's bookmark (its progress markers, for an unsorted
    stream) to ``record``'s replication key."""
    stream._increment_stream_state(record, context=partition)


def finalize_bookmark(stream: Stream, state: dict[str, Any]) -> None:
    """Promote ``state``'s progress markers to its bookmark."""
    stream._finalize_state(state)


def discard_progress_markers(stream: Stream, partition: Context) -> None:
    """Forget what this run observed for the partition: its bookmark stays put."""
    stream.get_context_state(partition).pop("progress_markers", None)


def write_state(stream: Stream) -> None:
    """A STATE message, when anything changed since the last one."""
    stream._write_state_message()


def mark_state_unflushed(stream: Stream) -> None:
    """Records went out: the next ``write_state`` must write STATE."""
    stream.state_manager.is_flushed = False


def check_record_limit(stream: Stream, records_written: int) -> None:
    """Stop the sync as the SDK does once ``--test``'s record limit is reached."""
    stream._check_max_record_limit(current_record_index=records_written)


# --- Messages written outside the SDK's loop ---------------------------------------


def write_schema(stream: Stream) -> None:
    """The stream's SCHEMA message(s), one per stream map alias."""
    stream._write_schema_message()


def write_record_the_sdk_way(stream: Stream, record: Record) -> None:
    """One record through the SDK's own path: field selection, type conformance,
    stream maps and flattening."""
    stream._write_record_message(record)


def sdk_record_messages(stream: Stream, record: Record) -> Iterator[RecordMessage]:
    """What ``write_record_the_sdk_way`` would write, without writing it."""
    return stream._generate_record_messages(record)


def write_message(stream: Stream, message: SDKBatchMessage) -> None:
    """A message through the tap's message writer."""
    stream._tap.write_message(message)


def full_table_version(stream: Stream) -> int:
    """The version number the SDK gives a full-table sync (``Stream.sync``)."""
    return stream._initialized_at // 1000


def set_table_version(stream: Stream, version: int) -> None:
    """Every RECORD of the stream carries ``version`` from now on (both record paths)."""
    stream._stream_version = version


def table_version(stream: Stream) -> int | None:
    """The version RECORD messages carry; None unless ACTIVATE_VERSION is in play."""
    return stream._stream_version


def write_activate_version(stream: Stream, version: int) -> None:
    """ACTIVATE_VERSION for every alias of the stream, with the SDK's own writer."""
    stream._write_activate_version_message(version)


# --- Log lines ----------------------------------------------------------------------

# Logged by singer_sdk.helpers._state for an unsorted stream's every partition.
UNSORTED_STREAM_WARNING = "Stream is assumed to be unsorted"


class _UnsortedStreamWarningFilter(logging.Filter):
    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(UNSORTED_STREAM_WARNING)


def silence_unsorted_stream_warning() -> None:
    """Drop the SDK's "Stream is assumed to be unsorted, progress is not resumable if
    interrupted", logged for every data source on every run. It is by design, not
    news: the API sorts by createdAt, so ``responses`` keeps progress markers and
    promotes each data source's bookmark once all its pages are in (README, "How a
    sync works"); an interrupted run re-reads from the last complete bookmark."""
    sdk_logger = logging.getLogger("singer_sdk")
    if not any(isinstance(f, _UnsortedStreamWarningFilter) for f in sdk_logger.filters):
        sdk_logger.addFilter(_UnsortedStreamWarningFilter())
