"""OffsetPager and iter_pages: where pages start and when paging ends.

docs/api-contract.md §3, §5, §6: pages by limit/offset; the last page is the one with
fewer responses than asked for (or none), also when total/offset/limit are missing;
a 413 is retried at the same offset with a smaller limit. Each page after the first
starts one response early (pagination.OVERLAP) to notice deletions, and asks for one
more (limit + 1) so the overlap costs no request; both are part of the requests
asserted here. A page cut short below ``total`` is a silent cap,
not the end; without ``total`` one more request confirms the end. A server ignoring
``offset``, or paging that stops bringing new responses, fails the data source.
"""

from __future__ import annotations

import pytest

from tap_smartforms.api_shape import MAX_PAGE_SIZE, Page, ResponseBundle
from tap_smartforms.client import PageTooLarge
from tap_smartforms.errors import DataSourceError
from tap_smartforms.pagination import OVERLAP, STALL_SLACK, OffsetPager, iter_pages


def _page(ids: list[int], **paging: int | None) -> Page:
    bundles = [ResponseBundle({"id": f"r{n}"}, [], [], None) for n in ids]
    return Page(None, [], bundles, received=len(ids), **paging)


def _ids(count: int) -> list[str]:
    return [f"r{n}" for n in range(count)]


class Server:
    """A list of responses served by offset and limit, recording each request.

    ``report`` names the paging fields the replies carry; ``cap`` is the most
    responses the server sends whatever is asked, and says so in ``limit``;
    ``silent_cap`` the same without saying so (``limit`` echoes what was asked);
    ``ignore_offset`` serves every page from 0; a page holding a response of
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
        silent_cap: int | None = None,
        ignore_offset: bool = False,
    ) -> None:
        self.size = size
        self.report = report
        self.cap = cap
        self.total = size if total is None else total
        self.big = big
        self.silent_cap = silent_cap
        self.ignore_offset = ignore_offset
        self.too_large_above: int | None = None
        self.requests: list[tuple[int, int]] = []

    def fetch(self, offset: int, limit: int) -> Page:
        self.requests.append((offset, limit))
        served = min(limit, self.cap) if self.cap else limit
        sent = min(served, self.silent_cap) if self.silent_cap else served
        first = 0 if self.ignore_offset else offset
        ids = list(range(first, min(first + sent, self.size)))
        too_large = self.too_large_above is not None and limit > self.too_large_above
        if too_large or (len(ids) > 1 and self.big.intersection(ids)):
            raise PageTooLarge("ds-1", "too large")
        paging = {"total": self.total, "offset": offset, "limit": served}
        return _page(ids, **{name: paging[name] for name in self.report})

    @property
    def limits(self) -> list[int]:
        return [limit for _, limit in self.requests]


def _read(server: Server, page_size: int, **options: bool) -> list[str]:
    pages = iter_pages(server.fetch, OffsetPager(page_size), data_source_id="ds-1", **options)
    return [str(b.record["id"]) for page in pages for b in page.responses]


def test_without_total_one_more_request_confirms_that_a_short_page_is_the_last():
    server = Server(25, report=())
    assert _read(server, 10) == _ids(25)
    # 0-9, 9-19 and 19-24 (short); the fourth request brings only the overlap.
    assert server.requests == [(0, 10), (9, 11), (19, 11), (24, 11)]


def test_without_total_a_short_single_page_costs_one_confirming_request():
    server = Server(4, report=())
    assert _read(server, 10) == _ids(4)
    assert server.requests == [(0, 10), (3, 11)]


@pytest.mark.parametrize(
    "report", [("offset", "limit"), ("total", "limit"), ("total", "offset"), ("limit",)]
)
def test_paging_reads_everything_with_any_paging_field_missing(report: tuple[str, ...]):
    server = Server(25, report=report)
    assert _read(server, 10) == _ids(25)


def test_paging_ends_on_an_empty_page_after_a_full_one():
    server = Server(20, report=())  # the second page, 9..19, is full
    assert _read(server, 10) == _ids(20)
    assert server.requests == [(0, 10), (9, 11), (19, 11)]


def test_reaching_total_ends_paging_without_an_empty_request():
    server = Server(25)  # the third page, 19..24, is short and ends at total
    assert _read(server, 10) == _ids(25)
    assert server.requests == [(0, 10), (9, 11), (19, 11)]


def test_a_full_page_that_reaches_total_exactly_is_the_last_request():
    server = Server(20)  # the second page, 9..19, is full and ends at total
    assert _read(server, 10) == _ids(20)
    assert server.requests == [(0, 10), (9, 11)]


def test_a_total_larger_than_what_is_served_ends_on_the_first_empty_page():
    server = Server(25, total=1000)
    assert _read(server, 10) == _ids(25)
    # The short page (19..24) is taken for a cap of 6, asked as 6 and the overlap;
    # then one of only the overlap for a cap of 1; the empty page after it ends paging.
    assert server.requests == [(0, 10), (9, 11), (19, 11), (24, 7), (25, 1)]


@pytest.mark.parametrize("cap", [1, 2, 7])
def test_a_silent_cap_below_total_is_not_mistaken_for_the_end(cap: int):
    server = Server(40, silent_cap=cap)
    assert _read(server, 10) == _ids(40)


def test_a_silent_cap_becomes_the_page_size_of_later_requests():
    server = Server(40, silent_cap=7)
    _read(server, 10)
    assert server.limits[0] == 10
    assert set(server.limits[1:]) == {7 + OVERLAP}
    assert [offset for offset, _ in server.requests] == [0, 6, 12, 18, 24, 30, 36]


@pytest.mark.parametrize("cap", [1, 2, 7])
def test_a_silent_cap_without_total_is_not_mistaken_for_the_end(cap: int):
    server = Server(40, silent_cap=cap, report=())
    assert _read(server, 10) == _ids(40)


@pytest.mark.parametrize("report", [("total", "offset", "limit"), ()])
def test_a_server_ignoring_offset_fails_the_data_source_with_one_line(report: tuple[str, ...]):
    server = Server(30, ignore_offset=True, report=report)
    with pytest.raises(DataSourceError) as raised:
        _read(server, 10)
    message = str(raised.value)
    assert message.startswith("data source ds-1: the API ignores the `offset` parameter")
    assert "offset 0" in message
    assert "\n" not in message
    assert len(server.requests) == 3  # the first page, its repeat, the probe


def test_a_data_source_within_one_page_is_read_whole_even_if_offset_is_ignored():
    server = Server(6, ignore_offset=True)
    assert _read(server, 10) == _ids(6)


def test_the_first_page_repeated_after_insertions_before_it_is_not_an_ignored_offset():
    responses = ["a", "b", "c", "d", "e"]
    requests: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> Page:
        requests.append((offset, limit))
        if len(requests) == 2:  # one response inserted before "a": "a" is now at 1
            responses.insert(0, "new")
        chunk = responses[offset : offset + limit]
        return Page(None, [], [ResponseBundle({"id": i}, [], [], None) for i in chunk], len(chunk))

    pages = iter_pages(fetch, OffsetPager(1), data_source_id="ds-1")
    read = [str(b.record["id"]) for page in pages for b in page.responses]
    assert {"a", "b", "c", "d", "e"} <= set(read)


def test_a_server_whose_pages_stop_bringing_new_responses_fails_after_bounded_requests():
    def stuck(offset: int, limit: int) -> Page:
        # After the first page, every page holds the first page's responses again,
        # starting with its last one (so the overlap matches and it is no repeat).
        return _page(list(range(10)) if offset == 0 else [9, *range(9)], total=1000)

    counted = Server(0)
    pager = OffsetPager(10)
    pages = iter_pages(
        lambda offset, limit: counted.fetch(offset, limit) and stuck(offset, limit),
        pager,
        data_source_id="ds-1",
    )
    with pytest.raises(DataSourceError, match=r"^data source ds-1: paging made no progress"):
        list(pages)
    # One page with new responses reached offset 10: one step back's worth plus the slack.
    assert len(counted.requests) == 1 + (10 // 10 + STALL_SLACK) + 1


def test_the_loop_guard_allows_a_walk_back_to_offset_zero_and_not_one_request_more():
    pager = OffsetPager(10)
    pager.advance(0, 10, 10)
    pager.advance(9, 10, 10, new=9)
    pager.advance(18, 10, 10, new=9)  # furthest offset with news: 28
    for _ in range(3 + STALL_SLACK):  # steps back from 28 to 0 (3), and the slack
        pager.count_request()
        assert not pager.stalled
    pager.count_request()
    assert pager.stalled


def test_a_page_with_new_responses_resets_the_loop_guard():
    pager = OffsetPager(10)
    pager.advance(0, 10, 10)
    for _ in range(1 + STALL_SLACK):
        pager.count_request()
    pager.advance(9, 10, 10, new=1)
    pager.count_request()
    assert not pager.stalled


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
    assert set(server.limits[1:]) == {5 + OVERLAP}
    # The server says it sent 5 of the 6 asked for: not short, not the end; 0-4, 4-8, 8-11.
    assert [offset for offset, _ in server.requests] == [0, 4, 8]


def test_a_server_cap_below_the_overlap_still_advances():
    server = Server(5, cap=1, report=("limit",))
    assert _read(server, 10) == _ids(5)


def test_a_server_sending_more_than_asked_is_read_on_from_what_it_sent():
    def generous(offset: int, limit: int) -> Page:
        ids = list(range(offset, min(offset + limit + 5, 30)))
        return _page(ids)

    pages = iter_pages(generous, OffsetPager(10), data_source_id="ds-1")
    assert [str(b.record["id"]) for page in pages for b in page.responses] == _ids(30)


def test_a_page_too_large_is_asked_again_with_half_the_responses():
    server = Server(30)
    server.too_large_above = 9
    assert _read(server, 32) == _ids(30)
    assert server.limits[:4] == [32, 16, 8, 8 + OVERLAP]
    assert server.requests[3][0] == 7  # the next page continues where 8 ended
    assert set(server.limits[3:]) == {8 + OVERLAP}  # and so do later pages


def test_a_page_too_large_only_with_the_overlaps_one_more_asks_the_page_size_again():
    # 8 fit on the first page, but the overlapped 9 do not: the ask loses the one
    # more (the overlap stays, within the 8), and the page size is not halved.
    server = Server(30)
    server.too_large_above = 8
    assert _read(server, 8) == _ids(30)
    assert server.requests[:3] == [(0, 8), (7, 9), (7, 8)]
    assert set(server.limits[2:]) == {8}
    assert [offset for offset, _ in server.requests[2:5]] == [7, 14, 21]


def test_a_page_still_too_large_without_the_one_more_halves_the_page_size():
    # The overlapped 9 are too large, then the 8 at the same offset too (response 12
    # is large): the one more goes first, then the page size halves.
    server = Server(30, big=frozenset({12}))
    server.too_large_above = 8
    assert _read(server, 8) == _ids(30)
    assert server.requests[:4] == [(0, 8), (7, 9), (7, 8), (7, 4)]
    assert (12, 1) in server.requests  # the large response read alone


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
    pages = iter_pages(server.fetch, OffsetPager(4), data_source_id="ds-1")
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
    pages = list(iter_pages(server.fetch, OffsetPager(10), data_source_id="ds-1", only_first=True))
    assert [page.responses for page in pages] == [[]]


def test_page_size_one_still_overlaps_with_two_responses_per_request():
    server = Server(4, report=())
    assert _read(server, 1) == ["r0", "r1", "r2", "r3"]
    assert server.requests[1] == (0, 2)


def test_a_repeated_overlap_response_is_yielded_once():
    server = Server(25, report=())
    pages = list(iter_pages(server.fetch, OffsetPager(10), data_source_id="ds-1"))
    # The fourth request confirms the end (no total) and holds only the overlap.
    assert [len(page.responses) for page in pages] == [10, 10, 5, 0]


def test_an_overlapped_page_asks_for_one_more_and_brings_a_full_page_of_new_responses():
    server = Server(50)
    pages = list(iter_pages(server.fetch, OffsetPager(10), data_source_id="ds-1"))
    assert server.requests == [(0, 10), (9, 11), (19, 11), (29, 11), (39, 11)]
    assert [len(page.responses) for page in pages] == [10] * 5  # 50 / 10 requests
    assert [b.record["id"] for page in pages for b in page.responses] == _ids(50)


def test_at_the_largest_page_size_the_overlapped_ask_stays_at_the_api_maximum():
    server = Server(1200)
    pages = list(iter_pages(server.fetch, OffsetPager(MAX_PAGE_SIZE), data_source_id="ds-1"))
    assert MAX_PAGE_SIZE == 500
    assert server.requests == [(0, 500), (499, 500), (998, 500)]
    assert [len(page.responses) for page in pages] == [500, 499, 201]


@pytest.mark.parametrize("report", [("total", "offset", "limit"), ()])
def test_a_silent_cap_at_exactly_the_page_size_neither_shrinks_nor_stalls_paging(
    report: tuple[str, ...],
):
    # Asked for 11, the server sends 10 (9 new): short, but not shrunk to 9 and on.
    server = Server(40, silent_cap=10, report=report)
    assert _read(server, 10) == _ids(40)
    assert server.limits[1:] == [11] * (len(server.requests) - 1)
    assert [offset for offset, _ in server.requests][:5] == [0, 9, 18, 27, 36]


@pytest.mark.parametrize("page_size", [0, -1])
def test_a_page_size_below_one_is_refused(page_size: int):
    with pytest.raises(ValueError, match="page_size"):
        OffsetPager(page_size)
