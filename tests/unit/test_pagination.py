"""OffsetPager and iter_pages: where pages start and when paging ends."""

from __future__ import annotations

import pytest

from tap_smartforms.client import PageTooLarge
from tap_smartforms.mapping import Page, ResponseBundle
from tap_smartforms.pagination import OffsetPager, iter_pages


def _page(ids: list[int], **paging: int | None) -> Page:
    bundles = [ResponseBundle({"id": f"r{n}"}, [], [], None) for n in ids]
    return Page(None, [], bundles, received=len(ids), **paging)


class Server:
    """A list of responses served by offset and limit, recording each request."""

    def __init__(self, size: int, *, report_paging: bool = True, cap: int | None = None) -> None:
        self.size = size
        self.report_paging = report_paging
        self.cap = cap
        self.too_large_above: int | None = None
        self.requests: list[tuple[int, int]] = []

    def fetch(self, offset: int, limit: int) -> Page:
        self.requests.append((offset, limit))
        if self.too_large_above is not None and limit > self.too_large_above:
            raise PageTooLarge("ds-1", "too large")
        served = min(limit, self.cap) if self.cap else limit
        ids = list(range(offset, min(offset + served, self.size)))
        if not self.report_paging:
            return _page(ids)
        return _page(ids, total=self.size, offset=offset, limit=served)


def _read(server: Server, page_size: int, **options: bool) -> list[str]:
    pages = iter_pages(server.fetch, OffsetPager(page_size), **options)
    return [str(b.record["id"]) for page in pages for b in page.responses]


def test_paging_ends_on_a_short_page_when_paging_fields_are_missing():
    server = Server(25, report_paging=False)
    assert _read(server, 10) == [f"r{n}" for n in range(25)]
    assert server.requests == [(0, 10), (9, 10), (18, 10)]


def test_paging_ends_on_an_empty_page_after_a_full_one():
    server = Server(19, report_paging=False)
    assert len(_read(server, 10)) == 19
    assert server.requests[-1] == (18, 10)


def test_reaching_total_ends_paging_without_an_empty_request():
    server = Server(20)
    assert len(_read(server, 10)) == 20
    assert server.requests == [(0, 10), (9, 10), (18, 10)]


def test_an_empty_data_source_takes_one_request():
    server = Server(0, report_paging=False)
    assert _read(server, 10) == []
    assert server.requests == [(0, 10)]


def test_a_server_capping_the_limit_is_not_mistaken_for_the_end():
    server = Server(12, cap=5)
    assert _read(server, 10) == [f"r{n}" for n in range(12)]
    assert all(limit <= 10 for _, limit in server.requests)


def test_a_page_too_large_is_asked_again_with_half_the_responses():
    server = Server(30)
    server.too_large_above = 8
    assert _read(server, 32) == [f"r{n}" for n in range(30)]
    assert [limit for _, limit in server.requests[:3]] == [32, 16, 8]


def test_a_single_response_too_large_ends_the_data_source():
    server = Server(3)
    server.too_large_above = 0
    pages = iter_pages(server.fetch, OffsetPager(4))
    with pytest.raises(PageTooLarge) as raised:
        next(pages)
    assert raised.value.data_source_id == "ds-1"
    assert [limit for _, limit in server.requests] == [4, 2, 1]


def test_only_first_reads_one_page():
    server = Server(100)
    assert len(_read(server, 10, only_first=True)) == 10
    assert len(server.requests) == 1


def test_page_size_one_still_overlaps_with_two_responses_per_request():
    server = Server(4, report_paging=False)
    assert _read(server, 1) == ["r0", "r1", "r2", "r3"]
    assert server.requests[1] == (0, 2)
