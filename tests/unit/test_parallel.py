"""fetch_in_parallel: data sources side by side, pages to one consumer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tap_smartforms.api_shape import Page
from tap_smartforms.errors import DataSourceError
from tap_smartforms.parallel import (
    PageFetched,
    SourceFailed,
    SourceFinished,
    fetch_in_parallel,
)


def _page(number: int) -> Page:
    return Page(form=None, questions=[], responses=[], received=number)


def _pages(count: int) -> Iterator[Page]:
    return (_page(number) for number in range(count))


def test_every_page_of_every_source_arrives_in_its_own_order_then_its_end():
    sources = {f"ds-{n}": (lambda n=n: _pages(n + 2)) for n in range(6)}
    events = list(fetch_in_parallel(sources, workers=3, pages_waiting=2))
    for source, make in sources.items():
        mine = [e for e in events if e.data_source_id == source]
        assert [e.page.received for e in mine[:-1] if isinstance(e, PageFetched)] == [
            page.received for page in make()
        ]
        assert isinstance(mine[-1], SourceFinished)


def test_a_failing_source_ends_alone():
    def broken() -> Iterator[Page]:
        yield _page(0)
        raise DataSourceError("ds-bad", "HTTP 403: no access")

    events = list(
        fetch_in_parallel(
            {"ds-bad": broken, "ds-good": lambda: _pages(3)}, workers=2, pages_waiting=1
        )
    )
    failures = [e for e in events if isinstance(e, SourceFailed)]
    assert [(f.data_source_id, f.error.problem) for f in failures] == [
        ("ds-bad", "HTTP 403: no access")
    ]
    good = [e for e in events if e.data_source_id == "ds-good"]
    assert len(good) == 4
    assert isinstance(good[-1], SourceFinished)


def test_an_unexpected_error_ends_only_its_data_source_with_one_line():
    def buggy() -> Iterator[Page]:
        raise KeyError("unexpected")
        yield  # pragma: no cover

    events = list(
        fetch_in_parallel({"ds-1": buggy, "ds-2": lambda: _pages(2)}, workers=2, pages_waiting=1)
    )
    (failure,) = [e for e in events if isinstance(e, SourceFailed)]
    assert failure.data_source_id == "ds-1"
    assert "KeyError" in failure.error.problem
    assert "\n" not in str(failure.error)
    assert isinstance([e for e in events if e.data_source_id == "ds-2"][-1], SourceFinished)


def test_workers_wait_while_the_consumer_is_behind():
    pages_waiting = 2
    produced = threading.Semaphore(0)

    def counted() -> Iterator[Page]:
        for page in _pages(50):
            yield page
            produced.release()  # resumed: the previous page was handed over

    events = fetch_in_parallel({"ds-1": counted}, workers=1, pages_waiting=pages_waiting)
    assert isinstance(next(events), PageFetched)
    # With one page taken, the worker can hand over pages_waiting more and then
    # hold one: it is never resumed beyond that while nobody reads.
    for _ in range(pages_waiting + 1):
        assert produced.acquire(timeout=10)
    assert not produced.acquire(timeout=0.3)  # cannot fail for a correct bound
    assert len(list(events)) == 50  # the other 49 pages and the end


def test_workers_never_exceed_the_limit():
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def tracked() -> Iterator[Page]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(timeout=0.05)
        with lock:
            running -= 1
        yield _page(1)

    list(fetch_in_parallel({f"ds-{n}": tracked for n in range(12)}, workers=4, pages_waiting=4))
    assert 1 <= most <= 4
