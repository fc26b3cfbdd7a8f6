"""iter_pages never skips a response that exists for the whole walk, whatever is
inserted, updated or deleted between two requests: also when more responses are
deleted behind the cursor than remain unread, so the overlapped offset comes back
empty and only stepping back finds the unread ones."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tap_smartforms.api_shape import Page, ResponseBundle
from tap_smartforms.pagination import OffsetPager, iter_pages


def _bundle(response_id: str) -> ResponseBundle:
    return ResponseBundle({"id": response_id}, [], [], None)


class ShiftingList:
    """A server's response list that an edit callback changes before each request.

    ``edit(items, request_number, offset)`` sees the offset asked for: the cursor.
    """

    def __init__(self, size: int, edit: Callable[[list[str], int, int], None]) -> None:
        self.items = [f"r{n:05d}" for n in range(size)]
        self.edit = edit
        self.requests = 0
        self._next = size

    def new_id(self) -> str:
        self._next += 1
        return f"r{self._next:05d}"

    def fetch(self, offset: int, limit: int) -> Page:
        self.requests += 1
        self.edit(self.items, self.requests, offset)
        chunk = self.items[offset : offset + limit]
        return Page(None, [], [_bundle(i) for i in chunk], received=len(chunk))


def _walk(server: ShiftingList, page_size: int) -> list[str]:
    pages = iter_pages(server.fetch, OffsetPager(page_size), data_source_id="ds-1")
    return [str(bundle.record["id"]) for page in pages for bundle in page.responses]


def test_a_list_that_does_not_change_is_read_once_without_duplicates():
    server = ShiftingList(95, lambda items, request, offset: None)
    assert _walk(server, 10) == server.items


def test_a_deletion_before_the_cursor_does_not_skip_the_next_response():
    def delete_the_first_before_request_3(items: list[str], request: int, offset: int) -> None:
        if request == 3:
            del items[0]

    server = ShiftingList(50, delete_the_first_before_request_3)
    survivors = [f"r{n:05d}" for n in range(1, 50)]
    assert set(survivors) <= set(_walk(server, 10))


def test_more_deletions_than_a_page_are_recovered_by_reading_again():
    def delete_fifteen_before_request_4(items: list[str], request: int, offset: int) -> None:
        if request == 4:
            del items[2:17]

    server = ShiftingList(60, delete_fifteen_before_request_4)
    read = set(_walk(server, 10))
    assert set(server.items) <= read


def _walk_deleting_behind_the_cursor_at(
    request_number: int, keep_behind: int, size: int = 100, page_size: int = 10
) -> tuple[ShiftingList, list[str], set[str]]:
    """Walk a list; before request ``request_number`` delete every response behind
    the cursor but the first ``keep_behind``. Returns the server, what was read and
    the responses that were never deleted."""
    deleted: list[str] = []

    def delete_behind(items: list[str], request: int, offset: int) -> None:
        if request == request_number:
            deleted.extend(items[keep_behind:offset])
            del items[keep_behind:offset]

    server = ShiftingList(size, delete_behind)
    original = list(server.items)
    read = _walk(server, page_size)
    assert len(deleted) > size - len(deleted) - keep_behind, "the deletion must be heavy"
    return server, read, set(original) - set(deleted)


@pytest.mark.parametrize("keep_behind", [0, 5, 20])
def test_deleting_more_behind_the_cursor_than_remains_unread_skips_no_unread_response(
    keep_behind: int,
):
    # Request 8 asks from offset 69: 69 - keep_behind responses go, fewer remain ahead.
    server, read, survivors = _walk_deleting_behind_the_cursor_at(8, keep_behind)
    assert survivors <= set(read)
    assert read[-1] == server.items[-1]


def test_after_a_heavy_deletion_the_walk_back_stays_within_the_loop_guard():
    _, read, survivors = _walk_deleting_behind_the_cursor_at(
        request_number=28, keep_behind=0, size=100, page_size=3
    )
    assert survivors <= set(read)


def test_the_overlap_already_emitted_is_not_emitted_again():
    server = ShiftingList(40, lambda items, request, offset: None)
    read = _walk(server, 10)
    assert len(read) == len(set(read)) == 40


@pytest.mark.parametrize("seed", range(150))
def test_random_edits_never_skip_a_surviving_response(seed: int):
    rng = random.Random(seed)
    page_size = rng.choice([1, 2, 3, 5, 10, 25])
    initial = rng.randint(0, 120)
    server = ShiftingList(initial, lambda items, request, offset: None)

    edits_until = rng.randint(1, 30)  # a sync that outruns its editors ends

    def edit(items: list[str], request: int, offset: int) -> None:
        if request > edits_until:
            return
        for _ in range(rng.randint(0, 3)):
            action = rng.random()
            if action < 0.05 and offset > 0:
                # A mass deletion behind the cursor, often more than remains unread.
                first = rng.randrange(offset)
                del items[first : rng.randint(first + 1, offset)]
            elif action < 0.45 and items:
                del items[rng.randrange(len(items))]
            elif action < 0.9:
                items.append(server.new_id())
            elif items:  # an update moving a response into an updatedFrom window
                items.insert(rng.randrange(len(items) + 1), server.new_id())

    server.edit = edit
    original = set(server.items)
    read = _walk(server, page_size)
    survivors = original & set(server.items)
    assert survivors <= set(read)
    assert server.requests <= 4 * (len(read) // page_size + 30)
