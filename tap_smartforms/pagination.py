"""Where the next page starts, and when there are no more.

The API pages by ``limit``/``offset`` [offset assumed]. The SDK's ``OffsetPaginator``
advances on the raw ``requests.Response``; we decide on the page already parsed
(one parse per page), must end on a short page when ``total``/``offset``/``limit``
are missing, and must shrink the page after a 413. So the decision lives in this
small class, which the page loop in ``streams.py`` drives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tap_smartforms.client import PageTooLarge
from tap_smartforms.mapping import Page


@dataclass
class OffsetPager:
    """The offset and limit of the next request of one data source."""

    page_size: int
    offset: int = 0
    finished: bool = False
    pages: int = 0

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.limit = self.page_size

    def advance(
        self, received: int, total: int | None = None, server_limit: int | None = None
    ) -> None:
        """Record a page of ``received`` responses.

        A page shorter than asked for (or empty) is the last one; so is reaching
        ``total`` when the server reports it. A server that caps ``limit`` below what
        we asked for says so in the page, and its cap becomes the page size, so a
        capped page is not mistaken for the last one.
        """
        self.pages += 1
        if server_limit is not None and 1 <= server_limit < self.limit:
            self.limit = server_limit
        self.offset += received
        if received < self.limit or (total is not None and self.offset >= total):
            self.finished = True

    def shrink(self) -> bool:
        """The page was too large (413): halve the limit for this and later pages.

        Returns False when the limit is already 1 and cannot shrink further.
        """
        if self.limit == 1:
            return False
        self.limit = max(1, self.limit // 2)
        return True


def iter_pages(
    fetch: Callable[[int, int], Page], pager: OffsetPager, *, only_first: bool = False
) -> Iterator[Page]:
    """Fetch pages until the pager is finished; after a 413, retry the same offset
    with half the limit. ``fetch(offset, limit)`` returns one shaped page."""
    while not pager.finished:
        try:
            page = fetch(pager.offset, pager.limit)
        except PageTooLarge:
            if not pager.shrink():
                raise
            continue
        pager.advance(page.received, total=page.total, server_limit=page.limit)
        yield page
        if only_first:
            return
