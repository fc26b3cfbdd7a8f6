"""Where the next page starts, when there are no more, and that no response is skipped.

The API pages by ``limit``/``offset`` [offset assumed]. The SDK's ``OffsetPaginator``
advances on the raw ``requests.Response``; we decide on the page already parsed
(one parse per page), must end on a short page when ``total``/``offset``/``limit``
are missing, must shrink the page after a 413, and must survive edits made while
we page. So the decision lives here, for the page loop in ``streams.py`` to drive.

Edits during a sync: a response deleted before our offset moves every later one a
place forward, so plain offset paging would skip one. Each page after the first
therefore starts ``OVERLAP`` responses early (with ``page_size`` 1 it asks for 2),
and its first response must be one the previous page held. If it is not, the
list shifted under us: we step back a page and read again until it is (at worst
from offset 0). A response that exists
for the whole sync is therefore never skipped; the price is re-reading, and the
overlap's responses already emitted are dropped. Inserted responses (appended, or
moved into an ``updatedFrom`` window by an update) only push others later, which
can repeat a response, never skip one; targets upsert on the primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from tap_smartforms.client import PageTooLarge
from tap_smartforms.mapping import Page, ResponseBundle

# Responses each page after the first re-reads from the end of the one before.
OVERLAP = 1


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

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.limit = self.page_size

    def next_request(self) -> tuple[int, int]:
        """The offset and limit to ask for: after the first page, ``OVERLAP``
        responses early, and at least one response more than the overlap."""
        if self.offset == 0 or not self.overlap_fits:
            return self.offset, self.limit
        return max(0, self.offset - OVERLAP), max(self.limit, OVERLAP + 1)

    def advance(
        self,
        start: int,
        asked: int,
        received: int,
        total: int | None = None,
        server_limit: int | None = None,
    ) -> None:
        """Record a page of ``received`` responses read from ``start``.

        A page shorter than asked for (or empty) is the last one; so is reaching
        ``total`` when the server reports it. A server that caps ``limit`` below what
        we asked for says so in the page, and its cap becomes the page size, so a
        capped page is not mistaken for the last one.
        """
        self.pages += 1
        if server_limit is not None and 1 <= server_limit < asked:
            self.limit = min(self.limit, server_limit)
            asked = server_limit
            if server_limit <= OVERLAP:
                # A page this small would hold only the overlap and never advance.
                self.overlap_fits = False
        self.offset = start + received
        if received < asked or (total is not None and self.offset >= total):
            self.finished = True

    def step_back(self) -> None:
        """The list shifted under us: read again from a page further back."""
        self.rereads += 1
        self.offset = max(0, self.offset - self.limit)

    def shrink(self, asked: int) -> bool:
        """A request for ``asked`` responses was too large (413): ask for fewer.

        Halves the page size for this and later pages; returns False when not
        even one response fits.
        """
        if asked > self.limit:  # the overlap request of one page of one response
            self.overlap_fits = False
            return True
        if self.limit == 1:
            return False
        self.limit = max(1, self.limit // 2)
        return True


def iter_pages(
    fetch: Callable[[int, int], Page], pager: OffsetPager, *, only_first: bool = False
) -> Iterator[Page]:
    """Fetch pages until the pager is finished, each continuing the one before.

    ``fetch(offset, limit)`` returns one shaped page. After a 413 the same offset
    is retried with fewer responses. Responses of the overlap that the previous
    page already held are left out of the page yielded.
    """
    previous_ids: set[str] = set()
    while not pager.finished:
        start, asked = pager.next_request()
        try:
            page = fetch(start, asked)
        except PageTooLarge:
            if not pager.shrink(asked):
                raise
            continue
        ids = [response_id(bundle) for bundle in page.responses]
        overlapped = start < pager.offset
        if overlapped and (not ids or ids[0] not in previous_ids):
            pager.step_back()  # a response before ``start`` was deleted
            continue
        pager.advance(start, asked, page.received, total=page.total, server_limit=page.limit)
        fresh = [b for b, i in zip(page.responses, ids, strict=True) if i not in previous_ids]
        previous_ids = set(ids)
        yield replace(page, responses=fresh)
        if only_first:
            return


def response_id(bundle: ResponseBundle) -> str:
    return str(bundle.record["id"])
