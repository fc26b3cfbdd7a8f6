"""The five streams: what each one emits.

Every stream's records come from one API request per page: each page carries the
form, its questions, and every response with its answers and attachments.
``responses`` is the only stream that reads the API, partitioned by data source
(one bookmark each); its sync is the page loop (page_loop.py), which writes each
page's records of all five streams (output.PageWriter) and keeps the bookmarks
(state.py).

The other four streams are declared children of ``responses`` so the SDK never
syncs them on its own, and selecting any of them makes ``responses`` run. They
are not synced as the SDK's child streams (once per response: a SCHEMA message,
log lines and set-up every time, several times the cost of the record itself,
see the README's Performance section).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_smartforms import sdk_bridge
from tap_smartforms.api_shape import Record
from tap_smartforms.page_loop import SyncServices, sync_responses
from tap_smartforms.state import BOOKMARK_CLOCK_SKEW_MARGIN

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_smartforms.sdk_bridge import BatchConfig

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

    def __init__(self, tap: Tap, services: SyncServices) -> None:
        super().__init__(tap)
        self._services = services

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        return [
            {"data_source_id": source.data_source_id}
            for source in self._services.settings.data_sources
        ]

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> datetime.datetime:
        return self._services.sync_started_at - BOOKMARK_CLOCK_SKEW_MARGIN

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> Iterable[Context | None]:
        # Children are fed per page by the page loop (module docstring), not per record.
        return ()

    @override
    def get_records(self, context: Context | None) -> Iterator[Record]:
        # Never called: sync_pages writes this stream's records.
        raise NotImplementedError("responses are written by the page loop (page_loop.py)")

    @override
    def get_batch_config(self, config: Mapping[str, Any]) -> BatchConfig | None:
        # With a batch_config the SDK's sync() would call _sync_batches, which feeds
        # the records this stream yields (none: the page loop writes them) to a
        # batcher. The page loop writes the batches of all five streams itself
        # (PageWriter), so the SDK must take the page loop (sync_pages) path.
        return None

    @override
    def sync_pages(self, *, write_messages: bool) -> None:
        # Every data source at once, a page at a time: page_loop.py.
        sync_responses(self, self._services, write_messages=write_messages)


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
    # The downloaded file's columns come after extra: they are the tap's, not the API's.
    schema = th.PropertiesList(
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
        _EXTRA,
        # Null unless attachments_path is set (attachments.py).
        th.Property("stored_path", th.StringType),
        th.Property("sha256", th.StringType),
        th.Property("stored_size_bytes", th.IntegerType),
        th.Property("downloaded_at", _TIMESTAMP),
        th.Property("download_error", th.StringType),
    ).to_dict()


def all_streams(tap: Tap, services: SyncServices) -> list[Stream]:
    """The five streams, in catalog order; ``responses`` runs the page loop with
    what ``services`` provides."""
    return [
        FormsStream(tap),
        QuestionsStream(tap),
        ResponsesStream(tap, services),
        AnswersStream(tap),
        AttachmentsStream(tap),
    ]
