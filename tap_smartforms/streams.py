"""The five streams, and the page loop that feeds them all from one request per page.

How records flow (the one place where we go around the SDK's sync loop):

* ``responses`` is the only stream that reads the API. It is partitioned by data
  source (one bookmark each). Its ``_sync_records`` has worker threads walk the
  data sources' pages side by side (parallel.py) and writes each page as it
  arrives, from the one main thread.
* Each page carries the form, its questions, and every response with its answers
  and attachments. The SDK's child streams would sync once per response (a SCHEMA
  message, log lines and set-up every time: several times the cost of the record
  itself, see sdk-notes.md), so instead ``PageWriter`` writes each page's records
  of all five streams, through output.py (which keeps field selection and stream
  maps working).
* The other four streams are declared children of ``responses`` so the SDK never
  syncs them on its own, and selecting any of them makes ``responses`` run.
* Order per page: forms and questions (first page only), then answers and
  attachments, then the responses, then STATE, so a STATE message never covers a
  record that has not been written.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, metrics
from singer_sdk import typing as th
from typing_extensions import override

from tap_smartforms import sdk_bridge
from tap_smartforms.api_shape import Page, Record, ResponseBundle
from tap_smartforms.output import RecordWriter
from tap_smartforms.pagination import OffsetPager, iter_pages
from tap_smartforms.parallel import (
    FetchEvent,
    PageSource,
    SourceFailed,
    SourceFinished,
    fetch_in_parallel,
)
from tap_smartforms.timestamps import TimestampError, parse_timestamp

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_smartforms.sdk_bridge import BatchConfig
    from tap_smartforms.tap import TapSmartForms

# The bookmark never passes the sync's start minus this margin, so a response
# updated while we page (or on a server whose clock runs a little behind ours) is
# read again by the next sync rather than skipped.
BOOKMARK_CLOCK_SKEW_MARGIN = datetime.timedelta(minutes=5)
# Where the responses stream's state keeps when the last complete reconcile started.
LAST_RECONCILED_AT = "last_reconciled_at"

_TIMESTAMP = th.DateTimeType
_ID = th.StringType


_EXTRA = th.Property(
    "extra",
    th.StringType,
    description="Every field the API sent for this record that the tap does not map to "
    "a column, as JSON text; null when there is none. Nothing the API sends is dropped.",
)


def _schema(*properties: th.Property[Any]) -> dict[str, Any]:
    """A stream's schema: its columns, then ``extra``."""
    return th.PropertiesList(*properties, _EXTRA).to_dict()


class ResponsesStream(sdk_bridge.PageLoopStream):
    """One record per response (one respondent's submission); drives the page loop."""

    name = "responses"
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = "updated_at"
    # The API sorts by createdAt, so updated_at arrives unsorted: the SDK then keeps
    # progress markers and promotes the bookmark only when a data source completes.
    is_sorted = False
    schema = _schema(
        th.Property("id", _ID, required=True),
        th.Property("form_id", _ID),
        th.Property("data_source_id", _ID, required=True),
        th.Property("status", th.StringType),
        th.Property("created_at", _TIMESTAMP),
        th.Property("updated_at", _TIMESTAMP),
        th.Property("submitted_at", _TIMESTAMP),
        th.Property("respondent_account_id", th.StringType),
        th.Property("respondent_display_name", th.StringType),
        th.Property("respondent_email", th.StringType),
        th.Property("issue_id", th.StringType),
        th.Property("issue_key", th.StringType),
        th.Property("issue_url", th.StringType),
        th.Property("issue_summary", th.StringType),
        th.Property("issue_project_key", th.StringType),
        th.Property("issue_status", th.StringType),
        th.Property(
            "created_issues",
            th.ArrayType(
                th.ObjectType(
                    th.Property("id", th.StringType),
                    th.Property("key", th.StringType),
                    th.Property("url", th.StringType),
                )
            ),
        ),
        th.Property("answer_count", th.IntegerType),
    )

    @property
    def smartforms_tap(self) -> TapSmartForms:
        return self._tap  # type: ignore[return-value]

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [
            {"data_source_id": source.data_source_id}
            for source in self.smartforms_tap.settings.data_sources
        ]

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> datetime.datetime:
        return self.smartforms_tap.sync_started_at - BOOKMARK_CLOCK_SKEW_MARGIN

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> Iterable[Context | None]:
        # Children are fed per page by the page loop (module docstring), not per record.
        return ()

    @override
    def get_records(self, context: Context | None) -> Iterator[Record]:
        # Never called: _sync_records below writes this stream's records itself.
        raise NotImplementedError("responses are written by ResponsesStream._sync_records")

    @override
    def get_batch_config(self, config: Mapping[str, Any]) -> BatchConfig | None:
        # With a batch_config the SDK's sync() would call _sync_batches, which feeds
        # the records this stream yields (none: the page loop writes them) to a
        # batcher. The page loop writes the batches of all five streams itself
        # (PageWriter), so the SDK must take the _sync_records path.
        return None

    @override
    def sync_pages(self, *, write_messages: bool) -> None:
        """Sync every data source at once, writing pages as they arrive.

        Replaces the SDK's private loop (which walks partitions one after another
        and handles one record at a time) because data sources are fetched side by
        side (parallel.py) and their pages arrive interleaved. What the SDK's loop
        does for state is kept: one bookmark per data source (partition), advanced
        only by records already written (with batch_config: already in a batch
        file), STATE after each page (or batch), and a data source's bookmark
        finalized only when all its pages are in.

        Table versions (ACTIVATE_VERSION) are handled here too, for all five
        streams: see ``_versions``.
        """
        tap = self.smartforms_tap
        contexts = {str(c["data_source_id"]): c for c in self.partitions}
        reconcile = self._reconcile_due()
        since = self._starting_points(contexts, reconcile=reconcile)
        versions = TableVersions(tap, reconcile=reconcile)
        run = tap.run
        pages_done = dict.fromkeys(contexts, 0)
        # Each page's newest response, with its partition, until the page's records
        # are out (at once for RECORD messages, at the next batch file with BATCH).
        unwritten: list[tuple[Record, Context]] = []

        def commit(*, final: bool) -> bool:
            """Advance the bookmarks past what is written; False: held back."""
            if not run.pages.flush(final=final):
                return False
            for record, partition in unwritten:
                sdk_bridge.increment_bookmark(self, record, partition)
            unwritten.clear()
            return True

        written = 0
        only_first = self._only_first_page()
        with contextlib.ExitStack() as counters_open:
            counters = self._open_record_counters(counters_open)
            for event in self._fetch_all(since):
                data_source_id = event.data_source_id
                partition = contexts[data_source_id]
                progress = run.report.progress(data_source_id)
                if isinstance(event, SourceFailed):
                    self._report_end(event)
                    versions.source_failed(data_source_id)
                    unwritten[:] = [(r, p) for r, p in unwritten if p is not partition]
                    self._keep_bookmark(partition)
                    continue
                if isinstance(event, SourceFinished):
                    self._report_end(event)
                    commit(final=True)
                    sdk_bridge.finalize_bookmark(self, self.get_context_state(partition))
                    if write_messages:
                        # Now, not with the next page: a kill before then would
                        # otherwise cost this data source a full re-read.
                        sdk_bridge.write_state(self)
                    continue
                pages_done[data_source_id] += 1
                kept = run.pages.write_page(
                    event.page,
                    since[data_source_id],
                    first=pages_done[data_source_id] == 1,
                    counters=counters,
                )
                # The bookmark covers the responses whose records went out, whichever
                # of responses, answers and attachments were selected: a run selecting
                # answers alone must not re-read every response next time. Not so
                # when only forms or questions are selected: then only the first page
                # is read, and its newest response says nothing of later pages.
                if kept and not only_first:
                    unwritten.append((max(kept, key=_updated_at_or_earliest).record, partition))
                if kept and self.selected:
                    written += len(kept)
                    sdk_bridge.check_record_limit(self, written)
                if commit(final=False) and write_messages:
                    sdk_bridge.write_state(self)
                run.report.page_done(progress, len(kept), event.page.total)
        commit(final=True)
        versions.activate(reconciled_at=tap.sync_started_at, stream_state=self.stream_state)
        sdk_bridge.finalize_bookmark(self, self.stream_state)
        if write_messages:
            sdk_bridge.write_state(self)

    def _starting_points(
        self, contexts: Mapping[str, Context], *, reconcile: bool
    ) -> dict[str, datetime.datetime | None]:
        """Per data source, the oldest update to read: its bookmark, or when
        reconciling, start_date (every response the config asks for)."""
        since = {}
        for data_source_id, partition in contexts.items():
            sdk_bridge.write_starting_bookmark(self, partition)
            # Per partition: the SDK caps a bookmark only by its own state's signpost
            # (sync() writes one for the stream as a whole, which no partition reads).
            sdk_bridge.write_signpost(self, partition, self.get_replication_key_signpost(partition))
            since[data_source_id] = (
                self.smartforms_tap.settings.start_date
                if reconcile
                else self.get_starting_timestamp(partition)
            )
        return since

    def _reconcile_due(self) -> bool:
        """Whether this run reads every response again as a new table version."""
        settings = self.smartforms_tap.settings
        if settings.full_refresh_responses:
            return True
        if settings.reconcile_every_days is None:
            return False
        last = self.stream_state.get(LAST_RECONCILED_AT)
        if not isinstance(last, str):
            return True
        try:
            last_at = parse_timestamp(last)
        except TimestampError:
            return True
        age = self.smartforms_tap.sync_started_at - last_at
        return age >= datetime.timedelta(days=settings.reconcile_every_days)

    def _report_end(self, event: SourceFailed | SourceFinished) -> None:
        """A data source is done: the report learns how, and how often it retried."""
        run = self.smartforms_tap.run
        progress = run.report.progress(event.data_source_id)
        client = run.clients[event.data_source_id]
        retries = (client.counters.retries, client.authenticator.retry_count)
        if isinstance(event, SourceFailed):
            run.report.fail(progress, str(event.error), *retries)
        else:
            run.report.finish(progress, *retries)

    def _open_record_counters(
        self, counters_open: contextlib.ExitStack
    ) -> dict[str, metrics.Counter]:
        """One record counter per selected stream: the SDK counts records in its own
        per-record loop, which the page loop replaces, so without these only some
        streams would get their record_count metric."""
        streams = self.smartforms_tap.streams
        return {
            name: counters_open.enter_context(streams[name].get_record_counter())
            for name in _STREAM_NAMES
            if streams[name].selected
        }

    def _only_first_page(self) -> bool:
        """Only forms and questions are selected: the first page of each data source
        holds all of them."""
        return not any(
            self.smartforms_tap.streams[name].selected
            for name in ("responses", "answers", "attachments")
        )

    def _fetch_all(self, since: Mapping[str, datetime.datetime | None]) -> Iterator[FetchEvent]:
        """Every data source's pages (only the first when only forms and questions are
        selected), as they arrive from the worker threads."""
        tap = self.smartforms_tap
        only_first = self._only_first_page()
        return fetch_in_parallel(
            {
                data_source_id: self._page_source(data_source_id, start, only_first)
                for data_source_id, start in since.items()
            },
            workers=tap.settings.parallel_data_sources,
            pages_waiting=tap.settings.parallel_data_sources,
        )

    def _page_source(
        self, data_source_id: str, since: datetime.datetime | None, only_first: bool
    ) -> PageSource:
        """The pages of one data source, for a worker thread to walk."""
        client = self.smartforms_tap.run.clients[data_source_id]

        def pages() -> Iterator[Page]:
            return iter_pages(
                lambda offset, limit: client.fetch_page(
                    offset=offset, limit=limit, updated_from=since
                ),
                OffsetPager(self.smartforms_tap.settings.page_size),
                data_source_id=data_source_id,
                only_first=only_first,
            )

        return pages

    def _keep_bookmark(self, context: Context) -> None:
        """A failed data source must not move its bookmark: it may not have seen
        every response updated since, so drop what this run observed."""
        sdk_bridge.discard_progress_markers(self, context)


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

    def __init__(self, tap: TapSmartForms, *, reconcile: bool) -> None:
        names = []
        if tap.settings.emit_activate_version_messages:
            names += ["forms", "questions"]
        if reconcile:
            names += ["responses", "answers", "attachments"]
        self.reconcile = reconcile
        self._streams = [tap.streams[name] for name in names if tap.streams[name].selected]
        self._failed: list[str] = []
        self._logger = tap.logger
        # The SDK's own version number for a full-table sync (Stream.sync).
        self._version = version = sdk_bridge.full_table_version(tap.streams["responses"])
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


def _updated_at_or_earliest(bundle: ResponseBundle) -> datetime.datetime:
    return bundle.updated_at or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


class _FedByPages(Stream):
    """A stream whose records come from the responses page loop, never on its own."""

    parent_stream_type = ResponsesStream
    state_partitioning_keys: ClassVar[list[str]] = []

    @override
    def get_records(self, context: Context | None) -> Iterable[Record]:
        return ()


class FormsStream(_FedByPages):
    """One record per form behind each configured data source."""

    name = "forms"
    primary_keys: ClassVar[list[str]] = ["id"]
    schema = _schema(
        th.Property("id", _ID, required=True),
        th.Property("data_source_id", _ID, required=True),
        th.Property("name", th.StringType),
        th.Property("description", th.StringType),
        th.Property("status", th.StringType),
        th.Property("created_at", _TIMESTAMP),
        th.Property("updated_at", _TIMESTAMP),
        th.Property("question_count", th.IntegerType),
    )


class QuestionsStream(_FedByPages):
    """One record per question of a form."""

    name = "questions"
    primary_keys: ClassVar[list[str]] = ["form_id", "id"]
    schema = _schema(
        th.Property("form_id", _ID, required=True),
        th.Property("id", _ID, required=True),
        th.Property("data_source_id", _ID, required=True),
        th.Property("position", th.IntegerType),
        th.Property("label", th.StringType),
        th.Property("type", th.StringType),
        th.Property("required", th.BooleanType),
        th.Property(
            "options",
            th.ArrayType(
                th.ObjectType(th.Property("id", th.StringType), th.Property("label", th.StringType))
            ),
        ),
    )


class AnswersStream(_FedByPages):
    """One record per answer inside a response; ``value`` is the API's value as JSON text."""

    name = "answers"
    primary_keys: ClassVar[list[str]] = ["response_id", "question_id"]
    replication_key = "response_updated_at"
    is_sorted = False
    schema = _schema(
        th.Property("response_id", _ID, required=True),
        th.Property("question_id", _ID, required=True),
        th.Property("form_id", _ID),
        th.Property("data_source_id", _ID, required=True),
        th.Property("label", th.StringType),
        th.Property("type", th.StringType),
        th.Property(
            "value",
            th.StringType,
            description="The answer's value as JSON text (string, number, boolean, array, "
            "object); null when the answer is empty.",
        ),
        th.Property("value_text", th.StringType),
        th.Property("response_updated_at", _TIMESTAMP),
    )


class AttachmentsStream(_FedByPages):
    """One record per file attached to an answer."""

    name = "attachments"
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = "response_updated_at"
    is_sorted = False
    schema = _schema(
        th.Property("id", _ID, required=True),
        th.Property("response_id", _ID, required=True),
        th.Property("question_id", _ID),
        th.Property("form_id", _ID),
        th.Property("data_source_id", _ID, required=True),
        th.Property("file_name", th.StringType),
        th.Property("mime_type", th.StringType),
        th.Property("size_bytes", th.IntegerType),
        th.Property("download_url", th.StringType),
        th.Property("response_updated_at", _TIMESTAMP),
    )


STREAM_TYPES: tuple[type[Stream], ...] = (
    FormsStream,
    QuestionsStream,
    ResponsesStream,
    AnswersStream,
    AttachmentsStream,
)


class PageWriter:
    """Writes each page's records of all five streams, in the order that keeps STATE
    honest: forms and questions (first page), answers and attachments, then the
    responses themselves, so a bookmark never covers a response whose answers are
    not out yet.

    Each stream's records go out through its ``RecordWriter`` (output.py), which
    honours field selection and stream maps; only the SDK's per-response child-sync
    machinery is skipped. The four page-fed streams' SCHEMA messages go out once,
    before their first record (``responses`` gets its own from the SDK's sync).
    """

    def __init__(self, streams: Mapping[str, Stream], batch_config: BatchConfig | None) -> None:
        self._writers = {name: RecordWriter(streams[name], batch_config) for name in _STREAM_NAMES}
        self._batch_size = batch_config.batch_size if batch_config else 0
        self._schemas_written = False

    def flush(self, *, final: bool) -> bool:
        """Whether every record written so far is out, so a STATE may follow.

        RECORD messages are out at once. With batch_config, records wait in memory
        until the streams together hold a batch's worth (``batch_size``) or the
        caller says ``final`` (a data source or the run is done); then each stream's
        records go to batch files and BATCH messages. STATE waits for them.
        """
        if not self._batch_size:
            return True
        if not final and sum(w.pending for w in self._writers.values()) < self._batch_size:
            return False
        for writer in self._writers.values():
            writer.write_batches()
        return True

    def write_page(
        self,
        page: Page,
        since: datetime.datetime | None,
        *,
        first: bool,
        counters: Mapping[str, metrics.Counter] | None = None,
    ) -> list[ResponseBundle]:
        """Write the page's records, counting them in ``counters`` (the selected
        streams' record counters); return the responses kept.

        Responses updated before ``since`` are dropped with their answers and
        attachments: the server may ignore ``updatedFrom``, so we filter here too.
        """
        self._write_schemas()
        counters = counters or {}
        if first and page.form is not None:
            self._write("forms", [page.form], counters)
            self._write("questions", page.questions, counters)
        kept = [
            bundle
            for bundle in page.responses
            if since is None or bundle.updated_at is None or bundle.updated_at >= since
        ]
        self._write("answers", [a for bundle in kept for a in bundle.answers], counters)
        self._write("attachments", [a for bundle in kept for a in bundle.attachments], counters)
        self._write("responses", [bundle.record for bundle in kept], counters)
        return kept

    def _write(
        self, name: str, records: Sequence[Record], counters: Mapping[str, metrics.Counter]
    ) -> None:
        self._writers[name].write(records)
        if records and (counter := counters.get(name)) is not None:
            counter.increment(len(records))

    def _write_schemas(self) -> None:
        if self._schemas_written:
            return
        self._schemas_written = True
        for name, writer in self._writers.items():
            if name != "responses" and writer.stream.selected:
                sdk_bridge.write_schema(writer.stream)


_STREAM_NAMES = ("forms", "questions", "answers", "attachments", "responses")
