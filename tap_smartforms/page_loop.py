"""The page loop ``responses`` runs instead of the SDK's per-record sync loop.

Each page of the API carries a form, its questions, and responses with their
answers and attachments: all five streams' records from one request. Worker
threads walk the data sources' pages side by side (parallel.py); this loop, in
the main thread, writes each page as it arrives (output.PageWriter) and moves the
data source's bookmark past it (state.ResponseBookmarks).

Order per page: forms and questions (first page only), then answers and
attachments, then the responses, then STATE, so a STATE message never covers a
record that has not been written. With ``attachments_path``, the page's files are
downloaded (attachments.py, a few at a time) before its records go out, so each
attachments record carries what became of its file and STATE never passes a
response whose files are unresolved; meanwhile the worker threads keep fetching
the next pages.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from singer_sdk import Stream, metrics

from tap_smartforms import sdk_bridge
from tap_smartforms.api_shape import Page
from tap_smartforms.attachments import AttachmentDownloader
from tap_smartforms.client import DataSourceClient
from tap_smartforms.output import STREAM_NAMES, PageWriter, responses_kept
from tap_smartforms.pagination import OffsetPager, iter_pages
from tap_smartforms.parallel import (
    FetchEvent,
    PageSource,
    SourceFailed,
    SourceFinished,
    fetch_in_parallel,
)
from tap_smartforms.report import RunReport, SourceProgress
from tap_smartforms.settings import TapSettings
from tap_smartforms.state import ResponseBookmarks, TableVersions, reconcile_due


@dataclass
class SyncRun:
    """What one run shares across streams: the streams, a client (and so one
    authenticator, one request budget) per data source, the page writer and the
    report."""

    streams: Mapping[str, Stream]
    clients: dict[str, DataSourceClient]
    pages: PageWriter
    report: RunReport
    logger: logging.Logger
    attachments: AttachmentDownloader | None = None  # None: attachments_path is not set


class SyncServices(Protocol):
    """What ``responses`` needs from its tap, given at construction (the tap is one).
    Read lazily: the run's clients are built only when a sync starts."""

    @property
    def settings(self) -> TapSettings: ...

    @property
    def sync_started_at(self) -> datetime.datetime: ...

    @property
    def run(self) -> SyncRun: ...


def sync_responses(stream: Stream, services: SyncServices, *, write_messages: bool) -> None:
    """Sync every data source at once, writing pages as they arrive.

    Replaces the SDK's private loop (which walks partitions one after another and
    handles one record at a time) because data sources are fetched side by side
    and their pages arrive interleaved. What the SDK's loop does for state is kept
    (state.py), and table versions (ACTIVATE_VERSION) are handled here for all five
    streams (state.TableVersions).
    """
    settings, run = services.settings, services.run
    partitions = {str(c["data_source_id"]): c for c in stream.partitions or []}
    reconcile = reconcile_due(stream.stream_state, settings, services.sync_started_at)
    bookmarks = ResponseBookmarks(stream, partitions, run.pages, write_messages=write_messages)
    since = bookmarks.starting_points(reconcile=reconcile, start_date=settings.start_date)
    versions = TableVersions(
        run.streams,
        run.logger,
        emit_activate_version_messages=settings.emit_activate_version_messages,
        reconcile=reconcile,
    )
    pages_done = dict.fromkeys(partitions, 0)
    written = 0
    only_first = _only_first_page(run.streams)
    with contextlib.ExitStack() as counters_open:
        counters = _open_record_counters(run.streams, counters_open)
        events = _fetch_all(run.clients, settings, since, only_first=only_first)
        for event in events:
            data_source_id = event.data_source_id
            progress = run.report.progress(data_source_id)
            if isinstance(event, SourceFailed):
                _report_end(run, event)
                versions.source_failed(data_source_id)
                bookmarks.source_failed(data_source_id)
                continue
            if isinstance(event, SourceFinished):
                _report_end(run, event)
                bookmarks.source_finished(data_source_id)
                continue
            pages_done[data_source_id] += 1
            _download_attachments(run, event.page, since[data_source_id], progress)
            kept = run.pages.write_page(
                event.page,
                since[data_source_id],
                first=pages_done[data_source_id] == 1,
                counters=counters,
            )
            # The bookmark covers the responses whose records went out, whichever of
            # responses, answers and attachments were selected: a run selecting
            # answers alone must not re-read every response next time. Not so when
            # only forms or questions are selected: then only the first page is
            # read, and its newest response says nothing of later pages.
            if not only_first:
                bookmarks.page_written(data_source_id, kept)
            if kept and stream.selected:
                written += len(kept)
                sdk_bridge.check_record_limit(stream, written)
            if bookmarks.commit(final=False):
                bookmarks.write_state()
            run.report.page_done(progress, len(kept), event.page.total)
    if run.attachments is not None:
        run.attachments.close()
    bookmarks.commit(final=True)
    versions.activate(reconciled_at=services.sync_started_at, stream_state=stream.stream_state)
    bookmarks.close()


def _download_attachments(
    run: SyncRun, page: Page, since: datetime.datetime | None, progress: SourceProgress
) -> None:
    """The files of the page's responses that will be written, before their records."""
    if run.attachments is None or not run.streams["attachments"].selected:
        return
    records = [record for bundle in responses_kept(page, since) for record in bundle.attachments]
    if records:
        client = run.clients[progress.data_source_id]
        run.report.attachments_done(progress, run.attachments.resolve(records, client))


def _report_end(run: SyncRun, event: SourceFailed | SourceFinished) -> None:
    """A data source is done: the report learns how, and how often it retried."""
    progress = run.report.progress(event.data_source_id)
    client = run.clients[event.data_source_id]
    retries = (client.counters.retries, client.authenticator.retry_count)
    if isinstance(event, SourceFailed):
        run.report.fail(progress, str(event.error), *retries)
    else:
        run.report.finish(progress, *retries)


def _open_record_counters(
    streams: Mapping[str, Stream], counters_open: contextlib.ExitStack
) -> dict[str, metrics.Counter]:
    """One record counter per selected stream: the SDK counts records in its own
    per-record loop, which the page loop replaces, so without these only some
    streams would get their record_count metric."""
    return {
        name: counters_open.enter_context(streams[name].get_record_counter())
        for name in STREAM_NAMES
        if streams[name].selected
    }


def _only_first_page(streams: Mapping[str, Stream]) -> bool:
    """Only forms and questions are selected: the first page of each data source
    holds all of them."""
    return not any(streams[name].selected for name in ("responses", "answers", "attachments"))


def _fetch_all(
    clients: Mapping[str, DataSourceClient],
    settings: TapSettings,
    since: Mapping[str, datetime.datetime | None],
    *,
    only_first: bool,
) -> Iterator[FetchEvent]:
    """Every data source's pages (only the first when only forms and questions are
    selected), as they arrive from the worker threads."""
    return fetch_in_parallel(
        {
            data_source_id: _page_source(
                clients[data_source_id], settings.page_size, start, only_first=only_first
            )
            for data_source_id, start in since.items()
        },
        workers=settings.parallel_data_sources,
        pages_waiting=settings.parallel_data_sources,
    )


def _page_source(
    client: DataSourceClient,
    page_size: int,
    since: datetime.datetime | None,
    *,
    only_first: bool,
) -> PageSource:
    """The pages of one data source, for a worker thread to walk."""

    def pages() -> Iterator[Page]:
        return iter_pages(
            lambda offset, limit: client.fetch_page(offset=offset, limit=limit, updated_from=since),
            OffsetPager(page_size),
            data_source_id=client.data_source_id,
            only_first=only_first,
        )

    return pages
