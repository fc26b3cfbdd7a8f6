"""Bookmark bookkeeping for ``responses``: one bookmark per data source, advanced only
past records already written, and table versions (ACTIVATE_VERSION).

The page loop (page_loop.py) replaces the SDK's per-record loop, so it keeps the
state as that loop would, with the SDK's own methods (sdk_bridge.py): a bookmark
moves only past records that are out (with batch_config: in a batch file), STATE
follows each page (or batch), and a data source's bookmark is finalized only when
all its pages are in.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

from singer_sdk import Stream
from singer_sdk.helpers.types import Context

from tap_smartforms import sdk_bridge
from tap_smartforms.api_shape import Record, ResponseBundle
from tap_smartforms.output import PageWriter
from tap_smartforms.settings import TapSettings
from tap_smartforms.timestamps import TimestampError, parse_timestamp

# The bookmark never passes the sync's start minus this margin, so a response
# updated while we page (or on a server whose clock runs a little behind ours) is
# read again by the next sync rather than skipped.
BOOKMARK_CLOCK_SKEW_MARGIN = datetime.timedelta(minutes=5)
# Where the responses stream's state keeps when the last complete reconcile started.
LAST_RECONCILED_AT = "last_reconciled_at"


def reconcile_due(
    stream_state: Mapping[str, Any], settings: TapSettings, started_at: datetime.datetime
) -> bool:
    """Whether this run reads every response again as a new table version."""
    if settings.full_refresh_responses:
        return True
    if settings.reconcile_every_days is None:
        return False
    last = stream_state.get(LAST_RECONCILED_AT)
    if not isinstance(last, str):
        return True
    try:
        last_at = parse_timestamp(last)
    except TimestampError:
        return True
    return started_at - last_at >= datetime.timedelta(days=settings.reconcile_every_days)


class ResponseBookmarks:
    """The bookmarks of ``responses``, one per data source (partition)."""

    def __init__(
        self,
        stream: Stream,
        partitions: Mapping[str, Context],
        pages: PageWriter,
        *,
        write_messages: bool,
    ) -> None:
        self._stream = stream
        self._partitions = partitions
        self._pages = pages
        self._write_messages = write_messages
        # Each page's newest response, with its partition, until the page's records
        # are out (at once for RECORD messages, at the next batch file with BATCH).
        self._unwritten: list[tuple[Record, Context]] = []

    def starting_points(
        self, *, reconcile: bool, start_date: datetime.datetime | None
    ) -> dict[str, datetime.datetime | None]:
        """Per data source, the oldest update to read: its bookmark, or when
        reconciling, start_date (every response the config asks for)."""
        stream = self._stream
        since = {}
        for data_source_id, partition in self._partitions.items():
            sdk_bridge.write_starting_bookmark(stream, partition)
            sdk_bridge.write_signpost(
                stream, partition, stream.get_replication_key_signpost(partition)
            )
            since[data_source_id] = (
                start_date if reconcile else stream.get_starting_timestamp(partition)
            )
        return since

    def page_written(self, data_source_id: str, kept: list[ResponseBundle]) -> None:
        """A page's responses went out (or into a batch): the bookmark may pass the
        newest of them once they are out; STATE follows when it can."""
        if kept:
            newest = max(kept, key=_updated_at_or_earliest).record
            self._unwritten.append((newest, self._partitions[data_source_id]))

    def commit(self, *, final: bool) -> bool:
        """Advance the bookmarks past what is written; False: held back."""
        if not self._pages.flush(final=final):
            return False
        for record, partition in self._unwritten:
            sdk_bridge.increment_bookmark(self._stream, record, partition)
        self._unwritten.clear()
        return True

    def write_state(self) -> None:
        if self._write_messages:
            sdk_bridge.write_state(self._stream)

    def source_finished(self, data_source_id: str) -> None:
        """All the data source's pages are in: its bookmark is final, and STATE says
        so now, not with the next page (a kill before then would otherwise cost this
        data source a full re-read)."""
        self.commit(final=True)
        partition = self._partitions[data_source_id]
        sdk_bridge.finalize_bookmark(self._stream, self._stream.get_context_state(partition))
        self.write_state()

    def source_failed(self, data_source_id: str) -> None:
        """A failed data source must not move its bookmark: it may not have seen
        every response updated since, so drop what this run observed."""
        partition = self._partitions[data_source_id]
        self._unwritten[:] = [(r, p) for r, p in self._unwritten if p is not partition]
        sdk_bridge.discard_progress_markers(self._stream, partition)

    def close(self) -> None:
        """The run is done: the stream's state is final and goes out."""
        sdk_bridge.finalize_bookmark(self._stream, self._stream.stream_state)
        self.write_state()


def _updated_at_or_earliest(bundle: ResponseBundle) -> datetime.datetime:
    return bundle.updated_at or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


class TableVersions:
    """ACTIVATE_VERSION for the streams this run sends whole.

    ``forms`` and ``questions`` (with ``emit_activate_version_messages``) and, in a
    reconcile run, ``responses``, ``answers`` and ``attachments``: every record of
    theirs carries this run's version, and ACTIVATE_VERSION tells the target to drop
    (or mark in ``_sdc_deleted_at``) rows of older versions: deleted forms,
    questions and responses, and replaced attachments.

    Unlike the SDK (``Stream.sync`` sends it before the first record), it is sent
    at the end, after every record of the stream, and only when every data source
    completed: these streams are fed by all data sources, and a data source that
    failed sent none (or only some) of its rows, which the target would otherwise
    delete. Then no ACTIVATE_VERSION is sent, a warning says why, and nothing is
    deleted; the next complete run catches up. This is the one place the tap writes
    ACTIVATE_VERSION, with the SDK's own writer.
    """

    def __init__(
        self,
        streams: Mapping[str, Stream],
        logger: logging.Logger,
        *,
        emit_activate_version_messages: bool,
        reconcile: bool,
    ) -> None:
        names = []
        if emit_activate_version_messages:
            names += ["forms", "questions"]
        if reconcile:
            names += ["responses", "answers", "attachments"]
        self.reconcile = reconcile
        self._streams = [streams[name] for name in names if streams[name].selected]
        self._failed: list[str] = []
        self._logger = logger
        self._version = version = sdk_bridge.full_table_version(streams["responses"])
        for stream in self._streams:
            sdk_bridge.set_table_version(stream, version)
        if reconcile:
            self._logger.info(
                "reconcile: reading every response again as table version %d", version
            )

    def source_failed(self, data_source_id: str) -> None:
        self._failed.append(data_source_id)

    def activate(self, *, reconciled_at: datetime.datetime, stream_state: dict[str, Any]) -> None:
        if not self._streams:
            return
        names = ", ".join(stream.name for stream in self._streams)
        if self._failed:
            self._logger.warning(
                "no ACTIVATE_VERSION for %s: data source %s did not complete, so rows "
                "this run did not send are not deleted; the next complete run does it",
                names,
                ", ".join(sorted(self._failed)),
            )
            return
        for stream in self._streams:
            sdk_bridge.write_activate_version(stream, self._version)
        if self.reconcile:
            stream_state[LAST_RECONCILED_AT] = reconciled_at.isoformat()
        self._logger.info("ACTIVATE_VERSION sent for %s", names)
