"""The five streams, and the page loop that feeds them all from one request per page.

How records flow (the one place where we go around the SDK's per-record children):

* ``responses`` is the only stream that reads the API. It is partitioned by data
  source (one bookmark each) and walks that data source's pages.
* Each page carries the form, its questions, and every response with its answers
  and attachments. The SDK's child streams would sync once per response (a SCHEMA
  message, log lines and set-up every time: several times the cost of the record
  itself, see sdk-notes.md), so instead the page loop hands each page's records to
  the other four streams through ``SiblingWriter``, which still goes through each
  stream's own SDK record pipeline (selection, stream maps, typing).
* The other four streams are declared children of ``responses`` so the SDK never
  syncs them on its own, and selecting any of them makes ``responses`` run.
* Order per page: forms and questions (first page only), then answers and
  attachments, then the responses themselves. STATE follows responses, so a STATE
  message never covers a record that has not been written.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream
from singer_sdk import typing as th

from tap_smartforms.errors import DataSourceError
from tap_smartforms.mapping import Page, Record
from tap_smartforms.output import RecordWriter
from tap_smartforms.pagination import OffsetPager, iter_pages

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_smartforms.tap import TapSmartForms

# The bookmark never passes the sync's start minus this margin, so a response
# updated while we page (or on a server whose clock runs a little behind ours) is
# read again by the next sync rather than skipped.
BOOKMARK_CLOCK_SKEW_MARGIN = datetime.timedelta(minutes=5)

_TIMESTAMP = th.DateTimeType
_ID = th.StringType


def _schema(*properties: th.Property[Any]) -> dict[str, Any]:
    return th.PropertiesList(*properties).to_dict()


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
        assert context is not None  # always partitioned by data source
        data_source_id = str(context["data_source_id"])
        run = self.smartforms_tap.run
        client = run.clients[data_source_id]
        since = self.get_starting_timestamp(context)
        progress = run.report.start(data_source_id)
        pager = OffsetPager(self.smartforms_tap.settings.page_size)
        # Only forms or questions wanted: the first page has all they need.
        only_first = not any(
            self.smartforms_tap.streams[name].selected
            for name in ("responses", "answers", "attachments")
        )
        try:
            pages = iter_pages(
                lambda offset, limit: client.fetch_page(
                    offset=offset, limit=limit, updated_from=since
                ),
                pager,
                only_first=only_first,
            )
            for page in pages:
                kept = run.siblings.write_page(page, since, first=pager.pages == 1)
                yield from kept
                run.report.page_done(progress, len(kept), page.total)
        except DataSourceError as error:
            run.report.fail(progress, str(error), client.counters.retries)
            self._keep_bookmark(context)
            return
        run.report.finish(progress, client.counters.retries)

    def _keep_bookmark(self, context: Context) -> None:
        """A failed data source must not move its bookmark: it may not have seen
        every response updated since, so drop what this run observed."""
        self.get_context_state(context).pop("progress_markers", None)


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


class SiblingWriter:
    """Writes the page loop's records of forms, questions, answers and attachments.

    Each stream's records go out through its ``RecordWriter`` (output.py), which
    honours field selection and stream maps; only the per-response child-sync
    machinery of the SDK is skipped. SCHEMA messages go out once, before the first
    record.
    """

    def __init__(self, streams: Mapping[str, Stream]) -> None:
        self._writers = {
            name: RecordWriter(streams[name])
            for name in ("forms", "questions", "answers", "attachments")
        }
        self._schemas_written = False

    def write_page(
        self, page: Page, since: datetime.datetime | None, *, first: bool
    ) -> list[Record]:
        """Write the page's sibling records; return the responses to emit.

        Responses updated before ``since`` are dropped with their answers and
        attachments: the server may ignore ``updatedFrom``, so we filter here too.
        """
        self._write_schemas()
        if first and page.form is not None:
            self._writers["forms"].write([page.form])
            self._writers["questions"].write(page.questions)
        kept = [
            bundle
            for bundle in page.responses
            if since is None or bundle.updated_at is None or bundle.updated_at >= since
        ]
        self._writers["answers"].write([a for bundle in kept for a in bundle.answers])
        self._writers["attachments"].write([a for bundle in kept for a in bundle.attachments])
        return [bundle.record for bundle in kept]

    def _write_schemas(self) -> None:
        if self._schemas_written:
            return
        self._schemas_written = True
        for writer in self._writers.values():
            if writer.stream.selected:
                writer.stream._write_schema_message()  # private SDK API: see module docstring
