"""The real tap process against an emulator whose paging misbehaves, or whose data
source fails or loses many responses while the tap pages (issue 10 item 4, issue 16).

Expectations come from the emulator's truth and its request log, never from what
the tap itself reports.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tap_smartforms_emulator import Emulator, FormSpec
from tests.conftest import responses_bookmarks

PAGE_SIZE = 10


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {record["id"] for record in records}


def _truth_ids(emu: Emulator, ds_id: str) -> set[str]:
    return {r["id"] for r in emu.truth()["responses"] if r["data_source_id"] == ds_id}


def _pages_to_read(responses: int, page_size: int) -> int:
    """Requests that read ``responses``: each page after the first re-reads one and
    asks for one more, so every page brings ``page_size`` new ones."""
    return max(1, math.ceil(responses / page_size))


@pytest.mark.parametrize("omit_paging_fields", [False, True], ids=["with-total", "no-total"])
def test_a_silent_page_cap_still_delivers_every_response(
    emulator, run_tap, omit_paging_fields: bool
):
    emu = emulator(
        [FormSpec(responses=57, seed=81)], silent_page_cap=7, omit_paging_fields=omit_paging_fields
    )

    run = run_tap(emu.tap_config(page_size=20))

    assert run.returncode == 0, run.stderr
    assert _ids(run.records("responses")) == _ids(emu.truth()["responses"])


def test_a_server_ignoring_offset_fails_that_data_source_alone(emulator, run_tap):
    # The second form fits in one page, so an ignored offset cannot hurt it.
    emu = emulator(
        [FormSpec(responses=45, seed=82), FormSpec(responses=PAGE_SIZE - 2, seed=83)],
        ignore_offset=True,
    )
    broken, healthy = emu.data_source_ids

    run = run_tap(emu.tap_config(page_size=PAGE_SIZE))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    about_broken = [line for line in run.error_lines if broken in line]
    assert len(about_broken) == 1, run.stderr
    assert "ignores the `offset` parameter" in about_broken[0]
    assert _ids(run.records("responses")) >= _truth_ids(emu, healthy)
    bookmarks = responses_bookmarks(run.states[-1])
    assert broken not in bookmarks
    assert healthy in bookmarks
    assert emu.stats.data_requests_by_ds[broken] <= 3  # the first page, its repeat, a probe


def test_deleting_more_responses_behind_the_cursor_than_remain_unread_loses_none(emulator, run_tap):
    emu = emulator([FormSpec(responses=100, seed=84)], rate_limit_per_minute=None)
    (ds_id,) = emu.data_source_ids
    initial = set(emu.response_ids(ds_id))
    deleted: list[str] = []

    def delete_most_behind_the_cursor(ds: str, offset: int, limit: int, number: int) -> None:
        if number == 8:  # asks from offset 69: 67 go behind it, 31 remain unread
            behind = emu.response_ids(ds)[2:offset]
            for response_id in behind:
                emu.delete_response(ds, response_id)
            deleted.extend(behind)

    emu.on_data_request(delete_most_behind_the_cursor)
    run = run_tap(emu.tap_config(page_size=PAGE_SIZE, requests_per_minute=6000))

    assert run.returncode == 0, run.stderr
    assert emu.stats.callback_errors == []
    assert len(deleted) > len(initial) - len(deleted) - 2, "the deletion must be heavy"
    assert initial - set(deleted) <= _ids(run.records("responses"))


def _fail_from_request(emu: Emulator, ds_id: str, failing_request: int) -> None:
    def fail(ds: str, offset: int, limit: int, number: int) -> None:
        if ds == ds_id and number == failing_request:
            emu.set_data_source_failure(ds_id, "forbidden")

    emu.on_data_request(fail)


@pytest.mark.parametrize(
    ("pages_before_failing", "omit_paging_fields"),
    [(2, False), (5, False), ("all but the last", False), ("all", True)],
    ids=["after-page-2", "after-page-5", "on-the-last-page", "on-the-end-confirmation"],
)
def test_a_data_source_failing_mid_sync_is_read_whole_by_the_next_run(
    emulator, run_tap, pages_before_failing: int | str, omit_paging_fields: bool
):
    responses = 100
    emu = emulator(
        [FormSpec(responses=responses, seed=85), FormSpec(responses=30, seed=86)],
        omit_paging_fields=omit_paging_fields,
    )
    failing, healthy = emu.data_source_ids
    pages = _pages_to_read(responses, PAGE_SIZE)
    pages_read = {"all but the last": pages - 1, "all": pages}.get(
        str(pages_before_failing), pages_before_failing
    )
    assert isinstance(pages_read, int)
    _fail_from_request(emu, failing, pages_read + 1)
    config = emu.tap_config(page_size=PAGE_SIZE)

    first = run_tap(config)

    assert first.returncode == 1
    assert emu.stats.data_requests_by_ds[failing] == pages_read + 1
    assert failing not in responses_bookmarks(first.states[-1])
    assert healthy in responses_bookmarks(first.states[-1])
    emu.on_data_request(None)
    emu.set_data_source_failure(failing, None)

    second = run_tap(config, state=first.states[-1])

    assert second.returncode == 0, second.stderr
    failing_truth = _truth_ids(emu, failing)
    emitted_first = {r["id"] for r in first.records("responses") if r["data_source_id"] == failing}
    emitted_second = {
        r["id"] for r in second.records("responses") if r["data_source_id"] == failing
    }
    assert failing_truth - emitted_first <= emitted_second
    # The failed data source has no bookmark yet: the next run reads all of it.
    assert emitted_second == failing_truth


def test_a_full_page_reaching_total_is_the_last_request(emulator, run_tap):
    page_size = 20
    responses = 80  # pages end at 20, 40, 60 and 80: the fourth, full, reaches total
    emu = emulator([FormSpec(responses=responses, seed=87)])

    run = run_tap(emu.tap_config(page_size=page_size))

    assert run.returncode == 0, run.stderr
    assert _ids(run.records("responses")) == _ids(emu.truth()["responses"])
    (ds_id,) = emu.data_source_ids
    pages = _pages_to_read(responses, page_size)
    # Each page after the first starts one early and asks for one more.
    assert [(entry.offset, entry.limit) for entry in emu.stats.request_log] == [
        (0, page_size),
        *((page * page_size - 1, page_size + 1) for page in range(1, pages)),
    ]
    assert emu.stats.data_requests_by_ds[ds_id] == pages == 4
