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
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, metrics
from singer_sdk import typing as th

from tap_smartforms.mapping import Page, Record, ResponseBundle
from tap_smartforms.output import RecordWriter
from tap_smartforms.pagination import OffsetPager, iter_pages
from tap_smartforms.parallel import PageSource, SourceFailed, SourceFinished, fetch_in_parallel

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_smartforms.tap import TapSmartForms

# The bookmark never passes the sync's start minus this margin, so a response
# updated while we page (or on a server whose clock runs a little behind ours) is
# read again by the next sync rather than skipped.
BOOKMARK_CLOCK_SKEW_MARGIN = datetime.timedelta(minutes=5)

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


class ResponsesStream(Stream):
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
    def partitions(self) -> list[dict[str, Any]]:
        return [
            {"data_source_id": source.data_source_id}
            for source in self.smartforms_tap.settings.data_sources
        ]

    def get_replication_key_signpost(self, context: Context | None = None) -> datetime.datetime:
        return self.smartforms_tap.sync_started_at - BOOKMARK_CLOCK_SKEW_MARGIN

    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> Iterable[Context | None]:
        # Children are fed per page by the page loop (module docstring), not per record.
        return ()

    def get_records(self, context: Context | None) -> Iterator[Record]:
        # Never called: _sync_records below writes this stream's records itself.
        raise NotImplementedError("responses are written by ResponsesStream._sync_records")

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[Record, Any, Any]:
        """Sync every data source at once, writing pages as they arrive.

        Overrides the SDK's private loop (which walks partitions one after another
        and handles one record at a time) because data sources are fetched side by
        side (parallel.py) and their pages arrive interleaved. What the SDK's loop
        does for state is kept: one bookmark per data source (partition), advanced
        only by records already written, STATE after each page, and a data source's
        bookmark finalized only when all its pages are in.
        """
        tap = self.smartforms_tap
        contexts = {str(c["data_source_id"]): c for c in self.partitions}
        since = {}
        for data_source_id, partition in contexts.items():
            self._write_starting_replication_value(partition)
            # Per partition: the SDK caps a bookmark only by its own state's signpost
            # (sync() writes one for the stream as a whole, which no partition reads).
            self._write_replication_key_signpost(
                partition, self.get_replication_key_signpost(partition)
            )
            since[data_source_id] = self.get_starting_timestamp(partition)
        only_first = not any(
            tap.streams[name].selected for name in ("responses", "answers", "attachments")
        )
        run = tap.run
        pages_done = dict.fromkeys(contexts, 0)
        written = 0
        with contextlib.ExitStack() as counters_open:
            # The SDK counts records in its own per-record loop, which the page loop
            # replaces: one counter per selected stream gives every stream its
            # record_count metric.
            counters = {
                name: counters_open.enter_context(tap.streams[name].get_record_counter())
                for name in _STREAM_NAMES
                if tap.streams[name].selected
            }
            events = fetch_in_parallel(
                {
                    data_source_id: self._page_source(
                        data_source_id, since[data_source_id], only_first
                    )
                    for data_source_id in contexts
                },
                workers=tap.settings.parallel_data_sources,
                pages_waiting=tap.settings.parallel_data_sources,
            )
            for event in events:
                data_source_id = event.data_source_id
                partition = contexts[data_source_id]
                progress = run.report.progress(data_source_id)
                client = run.clients[data_source_id]
                if isinstance(event, SourceFailed):
                    run.report.fail(progress, str(event.error), client.counters.retries)
                    self._keep_bookmark(partition)
                    continue
                if isinstance(event, SourceFinished):
                    run.report.finish(progress, client.counters.retries)
                    self._finalize_state(self.get_context_state(partition))
                    if write_messages:
                        # Now, not with the next page: a kill before then would
                        # otherwise cost this data source a full re-read.
                        self._write_state_message()
                    continue
                page = event.page
                pages_done[data_source_id] += 1
                kept = run.pages.write_page(
                    page,
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
                    newest = max(kept, key=_updated_at_or_earliest)
                    self._increment_stream_state(newest.record, context=partition)
                if kept and self.selected:
                    written += len(kept)
                    self._check_max_record_limit(current_record_index=written)
                if write_messages:
                    self._write_state_message()
                run.report.page_done(progress, len(kept), page.total)
        self._finalize_state(self.stream_state)
        if write_messages:
            self._write_state_message()
        yield from ()

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
        self.get_context_state(context).pop("progress_markers", None)


def _updated_at_or_earliest(bundle: ResponseBundle) -> datetime.datetime:
    return bundle.updated_at or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


class _FedByPages(Stream):
    """A stream whose records come from the responses page loop, never on its own."""

    parent_stream_type = ResponsesStream
    state_partitioning_keys: ClassVar[list[str]] = []

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

    def __init__(self, streams: Mapping[str, Stream]) -> None:
        self._writers = {name: RecordWriter(streams[name]) for name in _STREAM_NAMES}
        self._schemas_written = False

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
                writer.stream._write_schema_message()  # private SDK API: see module docstring


_STREAM_NAMES = ("forms", "questions", "answers", "attachments", "responses")
