"""OffsetPager and iter_pages: where pages start and when paging ends.

api-contract.md §3, §5, §6: pages by limit/offset; the last page is the one with
fewer responses than asked for (or none), also when total/offset/limit are missing;
a 413 is retried at the same offset with a smaller limit. Each page after the first
starts one response early (pagination.OVERLAP) to notice deletions; that overlap is
part of the requests asserted here.
"""

from __future__ import annotations

import pytest

from tap_smartforms.client import PageTooLarge
from tap_smartforms.mapping import Page, ResponseBundle
from tap_smartforms.pagination import OffsetPager, iter_pages


def _page(ids: list[int], **paging: int | None) -> Page:
    bundles = [ResponseBundle({"id": f"r{n}"}, [], [], None) for n in ids]
    return Page(None, [], bundles, received=len(ids), **paging)


def _ids(count: int) -> list[str]:
    return [f"r{n}" for n in range(count)]


class Server:
    """A list of responses served by offset and limit, recording each request.

    ``report`` names the paging fields the replies carry; ``cap`` is the most
    responses the server sends whatever is asked; a page holding a response of
    ``big`` together with any other is too large (413).
    """

    def __init__(
        self,
        size: int,
        *,
        report: tuple[str, ...] = ("total", "offset", "limit"),
        cap: int | None = None,
        total: int | None = None,
        big: frozenset[int] = frozenset(),
    ) -> None:
        self.size = size
        self.report = report
        self.cap = cap
        self.total = size if total is None else total
        self.big = big
        self.too_large_above: int | None = None
        self.requests: list[tuple[int, int]] = []

    def fetch(self, offset: int, limit: int) -> Page:
        self.requests.append((offset, limit))
        served = min(limit, self.cap) if self.cap else limit
        ids = list(range(offset, min(offset + served, self.size)))
        too_large = self.too_large_above is not None and limit > self.too_large_above
        if too_large or (len(ids) > 1 and self.big.intersection(ids)):
            raise PageTooLarge("ds-1", "too large")
        paging = {"total": self.total, "offset": offset, "limit": served}
        return _page(ids, **{name: paging[name] for name in self.report})

    @property
    def limits(self) -> list[int]:
        return [limit for _, limit in self.requests]


def _read(server: Server, page_size: int, **options: bool) -> list[str]:
    pages = iter_pages(server.fetch, OffsetPager(page_size), **options)
    return [str(b.record["id"]) for page in pages for b in page.responses]


def test_paging_ends_on_a_short_page_when_paging_fields_are_missing():
    server = Server(25, report=())
    assert _read(server, 10) == _ids(25)
    assert server.requests == [(0, 10), (9, 10), (18, 10)]


@pytest.mark.parametrize(
    "report", [("offset", "limit"), ("total", "limit"), ("total", "offset"), ("limit",)]
)
def test_paging_reads_everything_with_any_paging_field_missing(report: tuple[str, ...]):
    server = Server(25, report=report)
    assert _read(server, 10) == _ids(25)


def test_paging_ends_on_an_empty_page_after_a_full_one():
    server = Server(19, report=())
    assert _read(server, 10) == _ids(19)
    assert server.requests[-1] == (18, 10)


def test_reaching_total_ends_paging_without_an_empty_request():
    server = Server(20)
    assert _read(server, 10) == _ids(20)
    assert server.requests == [(0, 10), (9, 10), (18, 10)]


def test_a_total_larger_than_what_is_served_still_ends_on_a_short_page():
    server = Server(25, total=1000)
    assert _read(server, 10) == _ids(25)
    assert len(server.requests) == 3


def test_an_empty_data_source_takes_one_request():
    server = Server(0, report=())
    assert _read(server, 10) == []
    assert server.requests == [(0, 10)]


def test_a_total_of_zero_takes_one_request():
    server = Server(0)
    assert _read(server, 10) == []
    assert len(server.requests) == 1


def test_a_server_capping_the_limit_is_not_mistaken_for_the_end():
    server = Server(12, cap=5)
    assert _read(server, 10) == _ids(12)


def test_a_server_cap_becomes_the_page_size_of_later_requests():
    server = Server(12, cap=5)
    _read(server, 10)
    assert server.limits[0] == 10
    assert set(server.limits[1:]) == {5}


def test_a_server_cap_below_the_overlap_still_advances():
    server = Server(5, cap=1, report=("limit",))
    assert _read(server, 10) == _ids(5)


def test_a_server_sending_more_than_asked_is_read_on_from_what_it_sent():
    def generous(offset: int, limit: int) -> Page:
        ids = list(range(offset, min(offset + limit + 5, 30)))
        return _page(ids)

    pages = iter_pages(generous, OffsetPager(10))
    assert [str(b.record["id"]) for page in pages for b in page.responses] == _ids(30)


def test_a_page_too_large_is_asked_again_with_half_the_responses():
    server = Server(30)
    server.too_large_above = 8
    assert _read(server, 32) == _ids(30)
    assert server.limits[:4] == [32, 16, 8, 8]
    assert server.requests[3][0] == 7  # the next page continues where 8 ended


def test_a_large_response_shrinks_pages_down_to_one_and_paging_recovers():
    server = Server(20, big=frozenset({9}))
    assert _read(server, 16) == _ids(20)
    assert min(server.limits) == 1
    assert (9, 1) in server.requests  # the large response read alone


def test_a_shrunk_page_size_stays_for_the_rest_of_the_data_source():
    server = Server(40, big=frozenset({0}))
    assert _read(server, 8) == _ids(40)
    assert server.limits[:4] == [8, 4, 2, 1]
    assert set(server.limits[5:]) == {1}  # after one try at an overlap of 2


def test_a_single_response_too_large_ends_the_data_source():
    server = Server(3)
    server.too_large_above = 0
    pages = iter_pages(server.fetch, OffsetPager(4))
    with pytest.raises(PageTooLarge) as raised:
        next(pages)
    assert raised.value.data_source_id == "ds-1"
    assert server.limits == [4, 2, 1]


def test_only_first_reads_one_page():
    server = Server(100)
    assert _read(server, 10, only_first=True) == _ids(10)
    assert len(server.requests) == 1


def test_only_first_on_an_empty_data_source_reads_one_empty_page():
    server = Server(0)
    pages = list(iter_pages(server.fetch, OffsetPager(10), only_first=True))
    assert [page.responses for page in pages] == [[]]


def test_page_size_one_still_overlaps_with_two_responses_per_request():
    server = Server(4, report=())
    assert _read(server, 1) == ["r0", "r1", "r2", "r3"]
    assert server.requests[1] == (0, 2)


def test_a_repeated_overlap_response_is_yielded_once():
    server = Server(25, report=())
    pages = list(iter_pages(server.fetch, OffsetPager(10)))
    assert [len(page.responses) for page in pages] == [10, 9, 6]


@pytest.mark.parametrize("page_size", [0, -1])
def test_a_page_size_below_one_is_refused(page_size: int):
    with pytest.raises(ValueError, match="page_size"):
        OffsetPager(page_size)
