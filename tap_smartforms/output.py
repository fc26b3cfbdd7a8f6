"""RECORD output, a page at a time: the one place records leave the tap.

Why not the SDK's per-record path (``sdk_bridge.write_record_the_sdk_way``): for each record
it drops deselected fields, conforms every value to the schema, runs the stream
maps, builds a message object, serialises it and flushes stdout: several times the
cost of fetching, parsing and shaping the record (the README's Performance section).

Our records leave ``api_shape.py`` already in their schema's types (a test holds the
SDK's type conformance to be a no-op on them), so when a stream has no stream map
and no flattening, there is nothing left to do but serialise: each record is
encoded once with msgspec and a page's records go out in one write. When a stream
does have a map, an alias or flattening, its records take the SDK's own path, so
those features behave exactly as in any SDK tap. Either way field selection is
honoured and SCHEMA is written by the SDK.

With ``batch_config`` the same records (selected fields, stream maps applied)
wait in memory instead, and ``write_batches`` hands them to the SDK's own batcher
(``singer_sdk.batch.Batcher``: its JSON Lines or Parquet encoder, its storage)
and writes one BATCH message per file. The SDK's batch loop cannot be used as it
is: it batches one stream's records as its sync yields them, while our page loop
feeds five streams at once (page_loop.py), and it sends a mapped stream's unmapped
records under every alias.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from singer_sdk import Stream, metrics
from singer_sdk.batch import Batcher
from singer_sdk.mapper import SameRecordTransform

from tap_smartforms import sdk_bridge
from tap_smartforms.api_shape import Page, Record, ResponseBundle
from tap_smartforms.sdk_bridge import BatchConfig, SDKBatchMessage

_encode = msgspec.json.Encoder().encode


class RecordWriter:
    """Writes one stream's records, many at a time."""

    def __init__(self, stream: Stream, batch_config: BatchConfig | None = None) -> None:
        self.stream = stream
        self._fast: bool | None = None  # decided on first use: maps are set up late
        self._deselected: tuple[str, ...] = ()
        self._batch_config = batch_config
        self._waiting: dict[str, list[Record]] = {}  # batch mode: records by stream alias

    def write(self, records: Sequence[Record]) -> None:
        if not records or not self.stream.selected:
            return
        if self._fast is None:
            self._prepare()
        if self._batch_config is not None:
            self._keep_for_batch(records)
        elif self._fast:
            self._write_fast(records)
        else:
            for record in records:
                sdk_bridge.write_record_the_sdk_way(self.stream, record)

    @property
    def pending(self) -> int:
        """Records waiting for ``write_batches``."""
        return sum(len(records) for records in self._waiting.values())

    def write_batches(self) -> None:
        """Write the waiting records to batch files, one BATCH message per file."""
        config = self._batch_config
        if config is None:
            return
        for alias, records in self._waiting.items():
            if not records:
                continue
            batcher = Batcher(tap_name=self.stream.tap_name, stream_name=alias, batch_config=config)
            for manifest in batcher.get_batches(records=iter(records)):
                message = SDKBatchMessage(stream=alias, encoding=config.encoding, manifest=manifest)
                sdk_bridge.write_message(self.stream, message)
            sdk_bridge.mark_state_unflushed(self.stream)
        self._waiting.clear()

    def _keep_for_batch(self, records: Sequence[Record]) -> None:
        if self._fast:
            kept = [_without(r, self._deselected) for r in records] if self._deselected else records
            self._waiting.setdefault(self.stream.name, []).extend(kept)
            return
        for record in records:
            # What the SDK path would send as RECORD messages, maps and flattening applied.
            for message in sdk_bridge.sdk_record_messages(self.stream, record):
                self._waiting.setdefault(message.stream, []).append(message.record)

    def _prepare(self) -> None:
        stream = self.stream
        maps = stream.stream_maps
        self._fast = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream.name
            and not maps[0].flattening_enabled
        )
        self._deselected = tuple(
            name
            for name in stream.schema.get("properties", {})
            if not stream.mask.get(("properties", name), True)
        )

    def _write_fast(self, records: Sequence[Record]) -> None:
        extracted = datetime.datetime.now(datetime.timezone.utc).isoformat()
        head = b'{"type":"RECORD","stream":' + _encode(self.stream.name) + b',"record":'
        tail_fields: dict[str, Any] = {"time_extracted": extracted}
        version = sdk_bridge.table_version(self.stream)
        if version is not None:
            tail_fields["version"] = version
        tail = b"," + _encode(tail_fields)[1:] + b"\n"
        deselected = self._deselected
        if deselected:
            records = [_without(record, deselected) for record in records]
        body = b"".join([head + _encode(record) + tail for record in records])
        # SCHEMA and STATE go through the SDK's writer; flush its buffer first so
        # the order on stdout is the order of the calls.
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        sdk_bridge.mark_state_unflushed(self.stream)


def _without(record: Record, names: tuple[str, ...]) -> Record:
    return {key: value for key, value in record.items() if key not in names}


def responses_kept(page: Page, since: datetime.datetime | None) -> list[ResponseBundle]:
    """The page's responses updated at or after ``since``: the server may ignore
    ``updatedFrom``, so the tap filters too."""
    return [
        bundle
        for bundle in page.responses
        if since is None or bundle.updated_at is None or bundle.updated_at >= since
    ]


# The streams a page feeds, in the order their records go out (PageWriter says why).
STREAM_NAMES = ("forms", "questions", "answers", "attachments", "responses")


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
        self._writers = {name: RecordWriter(streams[name], batch_config) for name in STREAM_NAMES}
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
        kept = responses_kept(page, since)
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


STREAM_NAMES = ("forms", "questions", "answers", "attachments", "responses")
