"""Where the next page starts, when there are no more, and that no response is skipped.

The API pages by ``limit``/``offset`` [offset assumed]. The SDK's ``OffsetPaginator``
advances on the raw ``requests.Response``; we decide on the page already parsed
(one parse per page), must end on a short page when ``total``/``offset``/``limit``
are missing, must shrink the page after a 413, and must survive edits made while
we page. So the decision lives here, for the page loop in ``page_loop.py`` to drive.

Edits during a sync: a response deleted before our offset moves every later one a
place forward, so plain offset paging would skip one. Each page after the first
therefore starts ``OVERLAP`` responses early, and its first response must be one
the previous page held. If it is not, the list shifted under us: we step back a
page and read again until it is (at worst from offset 0). A response that exists
for the whole sync is therefore never skipped; the price is re-reading, and the
overlap's responses already emitted are dropped. Inserted responses (appended, or
moved into an ``updatedFrom`` window by an update) only push others later, which
can repeat a response, never skip one; targets upsert on the primary key.

The overlap costs no request: a page that starts early also asks for ``OVERLAP``
more (``limit + 1``), so each full page still brings ``page_size`` new responses,
and N responses take ``ceil(N / page_size)`` pages as without the overlap. Only at
the API's maximum (``MAX_PAGE_SIZE``, 500) is the ask not raised, and those pages
bring 499 new. A 413 on an overlapped ask first drops the one more (pages then
bring ``limit - 1`` new, as before this ask existed), then halves ``limit``; only when
the overlap and a single new response are too large is the overlap given up.

When paging ends: a page that reaches ``total`` is the last. A page shorter than
asked for (the overlap included) is the last only if nothing says otherwise: when
``offset + received`` is still below ``total``, the server capped the page size
without saying so, and we go on with the size it gave (asking it plus the overlap:
a server capping at exactly ``page_size`` just keeps sending ``page_size``, 1 of
them the overlap). Without ``total`` a short page cannot tell a silent cap from
the end, so the next request confirms the end (it must bring nothing new past the
overlap); that costs one extra request per data source per run, only when
``total`` is missing and the last page is short. A server that ignores ``offset``,
or paging that stops bringing new responses for any reason, fails the data source
with one line instead of looping or passing for done.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from tap_smartforms.api_shape import MAX_PAGE_SIZE, Page, ResponseBundle
from tap_smartforms.client import PageTooLarge
from tap_smartforms.errors import DataSourceError

# Responses each page after the first re-reads from the end of the one before.
OVERLAP = 1

# Requests without progress allowed on top of what re-reading after deletions can
# legitimately take (see ``OffsetPager.stalled``): the 413 halvings from 500 down
# to 1 (9), plus the request confirming an end and the probe after a page that
# looked like the first page again.
STALL_SLACK = 10


@dataclass
class OffsetPager:
    """The offset and limit of the next request of one data source."""

    page_size: int
    offset: int = 0
    finished: bool = False
    pages: int = 0
    rereads: int = 0
    # False once even the overlap and one new response exceed the size limit
    # (413 for two responses): then pages cannot overlap, and are plain offsets.
    overlap_fits: bool = True
    # False once a page of ``limit`` fitted but the overlapped ask of one more got a
    # 413: then overlapped pages ask for ``limit`` (the overlap within it), as the
    # size limit allows, rather than halving the page size for one response.
    extra_fits: bool = True
    # The furthest offset a page with new responses reached, and requests made
    # since the last such page (``stalled``).
    high_water: int = 0
    requests_since_progress: int = 0

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.limit = self.page_size

    def next_request(self) -> tuple[int, int]:
        """The offset and limit to ask for: after the first page, ``OVERLAP``
        responses early and ``OVERLAP`` more, so that every page brings ``limit`` new
        responses (the API's ``MAX_PAGE_SIZE`` permitting) and the overlap costs no
        extra request."""
        if self.offset == 0 or not self.overlap_fits:
            return self.offset, self.limit
        extra = OVERLAP if self.extra_fits else 0
        asked = min(self.limit + extra, max(MAX_PAGE_SIZE, self.limit))
        return max(0, self.offset - OVERLAP), max(asked, OVERLAP + 1)

    def advance(
        self,
        start: int,
        asked: int,
        received: int,
        total: int | None = None,
        server_limit: int | None = None,
        *,
        new: int | None = None,
    ) -> None:
        """Record a page of ``received`` responses read from ``start``, ``new`` of
        them not held by the previous page (all of them if not given).

        Paging ends when the page reaches ``total``, when a page comes back empty,
        or, without ``total``, when a short page brings nothing new: the request
        after any short page confirms the end that way. A page shorter than asked
        for below ``total`` is a server cap, said (``server_limit``) or not, and
        becomes the page size.
        """
        self.pages += 1
        new = received if new is None else new
        if server_limit is not None and 1 <= server_limit < asked:
            self._cap(server_limit)
            asked = server_limit
        self.offset = start + received
        if new > 0:
            self.high_water = max(self.high_water, self.offset)
            self.requests_since_progress = 0
        if (total is not None and self.offset >= total) or received == 0:
            self.finished = True
        elif received < asked:
            if total is None and new == 0:
                # Asked past the end of the page before and got nothing new: the
                # end is confirmed (a silent cap would have sent new responses).
                self.finished = True
            elif total is not None or received <= OVERLAP:
                # Short although ``total`` says there is more: the server caps the
                # page size without saying so, and the size it sent is the page size
                # from now on. A page of only the overlap's size could be such a cap
                # too, and would never advance: the overlap is switched off.
                self._cap(received)
            # Otherwise (no ``total``) the next request confirms the end. The limit
            # stays: a short page there may also be the end of a list that grows
            # while we page, and asking for more than a capped server sends costs
            # nothing, while shrinking on every such end would ratchet pages down.

    def _cap(self, server_page_size: int) -> None:
        self.limit = min(self.limit, server_page_size)
        if server_page_size <= OVERLAP:
            # A page this small would hold only the overlap and never advance.
            self.overlap_fits = False

    def step_back(self) -> None:
        """The list shifted under us: read again from a page further back."""
        self.rereads += 1
        self.offset = max(0, self.offset - self.limit)

    def shrink(self, asked: int) -> bool:
        """A request for ``asked`` responses was too large (413): ask for fewer.

        An overlapped ask of ``OVERLAP`` more than the page size first loses the
        ``OVERLAP`` more; after that, halves the page size for this and later pages.
        At a page size of 1, an ask of the overlap and one new response switches the
        overlap off instead. Returns False when not even one response fits.
        """
        if self.limit == 1:
            if asked > 1:  # the overlap and one new response
                self.overlap_fits = False
                return True
            return False
        if asked > self.limit and self.extra_fits:
            self.extra_fits = False  # ``limit`` may fit: drop the one more first
            return True
        self.limit = max(1, self.limit // 2)
        return True

    def count_request(self) -> None:
        self.requests_since_progress += 1

    @property
    def stalled(self) -> bool:
        """True when more requests went by without a new response than recovering
        from deletions can take.

        Progress is a page holding a response the page before did not. (The
        furthest offset reached is no measure: deletions while we page shrink the
        list, and a sync can then end without reaching that offset again.) After
        deletions behind the cursor the only requests without progress are the
        steps back until the overlap matches again: a page at a time, at worst
        back to offset 0, so about ``high_water / limit`` of them.
        ``STALL_SLACK`` covers 413 halvings, the request confirming an end and the
        probe for an ignored offset. A pager still going after that is looping (a
        server that does not honour ``offset``, or a bug), not recovering.
        """
        allowed = math.ceil(self.high_water / self.limit) + STALL_SLACK
        return self.requests_since_progress > allowed


def iter_pages(
    fetch: Callable[[int, int], Page],
    pager: OffsetPager,
    *,
    data_source_id: str,
    only_first: bool = False,
) -> Iterator[Page]:
    """Fetch pages until the pager is finished, each continuing the one before.

    ``fetch(offset, limit)`` returns one shaped page. After a 413 the same offset
    is retried with fewer responses. Responses of the overlap that the previous
    page already held are left out of the page yielded. Raises ``DataSourceError``
    when the server ignores ``offset`` or paging stops making progress.
    """
    previous_ids: set[str] = set()
    first_page_ids: list[str] = []  # the last page read at offset 0
    while not pager.finished:
        start, asked = pager.next_request()
        if pager.stalled:
            raise DataSourceError(
                data_source_id,
                f"paging made no progress in {pager.requests_since_progress} requests "
                f"(last asked offset {start}, limit {asked}; furthest offset reached "
                f"{pager.high_water}): the API's paging is inconsistent; nothing past "
                "that offset was synced",
            )
        pager.count_request()
        try:
            page = fetch(start, asked)
        except PageTooLarge:
            if not pager.shrink(asked):
                raise
            continue
        ids = [response_id(bundle) for bundle in page.responses]
        if start > 0 and _repeats_first_page(ids, first_page_ids):
            # The first page again at another offset: the server ignores ``offset``,
            # or exactly ``start`` responses were inserted before the first one.
            # Only the former repeats it at an offset further on as well.
            probe_start = start + len(ids)
            pager.count_request()
            if _repeats_first_page(_ids_at(fetch, probe_start, asked), first_page_ids):
                raise DataSourceError(
                    data_source_id,
                    "the API ignores the `offset` parameter: the pages asked at offsets "
                    f"{start} and {probe_start} repeat the page at offset 0, so only the "
                    f"first {len(first_page_ids)} responses can be read; report it to "
                    "the app vendor",
                )
        overlapped = start < pager.offset
        if overlapped and (not ids or ids[0] not in previous_ids):
            pager.step_back()  # a response before ``start`` was deleted
            continue
        fresh = [b for b, i in zip(page.responses, ids, strict=True) if i not in previous_ids]
        pager.advance(
            start, asked, page.received, total=page.total, server_limit=page.limit, new=len(fresh)
        )
        if start == 0:
            first_page_ids = ids
        previous_ids = set(ids)
        yield replace(page, responses=fresh)
        if only_first:
            return


def _repeats_first_page(ids: list[str], first_page_ids: list[str]) -> bool:
    """The page starts as the page at offset 0 did, as far as both go: an
    overlapped page asks for ``OVERLAP`` more than the first page did, so a server
    ignoring ``offset`` sends the first page and more."""
    common = min(len(ids), len(first_page_ids))
    return common > 0 and ids[:common] == first_page_ids[:common]


def _ids_at(fetch: Callable[[int, int], Page], offset: int, limit: int) -> list[str]:
    """The response ids of one page; none if it is too large to tell."""
    try:
        return [response_id(bundle) for bundle in fetch(offset, limit).responses]
    except PageTooLarge:
        return []


def response_id(bundle: ResponseBundle) -> str:
    return str(bundle.record["id"])
