"""Several data sources fetched at once, their pages handed to one writing thread.

Each data source has its own token and request budget, so fetching them side by
side costs the API nothing and turns a run's wall time from the sum of every
page's latency into that sum divided by the number of workers. Only fetching,
decoding and shaping run in the workers; the caller consumes the events in one
thread, so Singer messages are written by exactly one writer.

Memory stays bounded by pages in flight, not by form size: a worker blocks once
``pages_waiting`` pages wait for the writer, so at most one page per worker is
being fetched and ``pages_waiting`` pages are queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from tap_smartforms.api_shape import Page
from tap_smartforms.errors import DataSourceError, quote_server_text

logger = logging.getLogger(__name__)

# How often a worker blocked on a full queue checks whether the run was abandoned.
_STOP_CHECK_SECONDS = 0.2


@dataclass(frozen=True)
class PageFetched:
    data_source_id: str
    page: Page


@dataclass(frozen=True)
class SourceFinished:
    data_source_id: str


@dataclass(frozen=True)
class SourceFailed:
    data_source_id: str
    error: DataSourceError


FetchEvent = PageFetched | SourceFinished | SourceFailed


@dataclass(frozen=True)
class _WorkerCrashed:
    error: BaseException


PageSource = Callable[[], Iterator[Page]]


def fetch_in_parallel(
    sources: Mapping[str, PageSource], *, workers: int, pages_waiting: int
) -> Iterator[FetchEvent]:
    """Every data source's pages, in the order they arrive, then its end.

    Each data source's pages come in their own order (one worker walks them); any
    error ends that data source only (``SourceFailed``). Closing the iterator early
    stops the workers.
    """
    events: queue.Queue[FetchEvent | _WorkerCrashed] = queue.Queue(maxsize=max(1, pages_waiting))
    todo: queue.SimpleQueue[tuple[str, PageSource]] = queue.SimpleQueue()
    for item in sources.items():
        todo.put(item)
    stop = threading.Event()

    def hand_over(event: FetchEvent | _WorkerCrashed) -> bool:
        while not stop.is_set():
            try:
                events.put(event, timeout=_STOP_CHECK_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def walk(data_source_id: str, pages: PageSource) -> bool:
        try:
            for page in pages():
                if not hand_over(PageFetched(data_source_id, page)):
                    return False
        except DataSourceError as error:
            return hand_over(SourceFailed(data_source_id, error))
        except Exception as error:
            # A reply we did not foresee, or a bug: one form must still not stop the
            # others. The one-line reason names the error; the traceback goes to
            # the debug log for the bug report.
            logger.debug("data source %s failed unexpectedly", data_source_id, exc_info=True)
            # The error's text may quote a reply (a library's message): quoted as such.
            problem = (
                f"unexpected {type(error).__name__}: {quote_server_text(error)}; please report it"
            )
            return hand_over(SourceFailed(data_source_id, DataSourceError(data_source_id, problem)))
        return hand_over(SourceFinished(data_source_id))

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    data_source_id, pages = todo.get_nowait()
                except queue.Empty:
                    return
                if not walk(data_source_id, pages):
                    return
        except BaseException as error:  # e.g. KeyboardInterrupt: the run stops
            hand_over(_WorkerCrashed(error))

    # Daemon threads: if the writer stops early, a worker stuck in a long retry
    # must not keep the process alive.
    threads = [
        threading.Thread(target=work, name=f"data-source-worker-{number}", daemon=True)
        for number in range(min(workers, len(sources)))
    ]
    for thread in threads:
        thread.start()
    try:
        remaining = len(sources)
        while remaining:
            event = events.get()
            if isinstance(event, _WorkerCrashed):
                raise event.error
            if not isinstance(event, PageFetched):
                remaining -= 1
            yield event
    finally:
        stop.set()
