"""Every timestamp style the API uses comes out as UTC RFC 3339 (docs/api-contract.md §4).

The contract lists ISO-8601 instants only: Jira's ``+0000`` (no colon), ``Z`` and
``+02:00``, with or without a fraction of a second. Epoch numbers are not among
them, so they are refused like any other non-timestamp rather than guessed at.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tap_smartforms.timestamps import (
    TimestampError,
    format_utc,
    normalize_timestamp,
    parse_timestamp,
)
from tap_smartforms_emulator.timefmt import OFFSETS_MINUTES, STYLES, render


@pytest.mark.parametrize(
    ("sent", "emitted"),
    [
        ("2026-01-15T14:23:45.000+0000", "2026-01-15T14:23:45+00:00"),  # Jira, no colon
        ("2026-01-15T16:23:45.000+0200", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T09:23:45.123-0500", "2026-01-15T14:23:45.123000+00:00"),
        ("2026-01-15T20:08:45.000+0545", "2026-01-15T14:23:45+00:00"),  # offset with minutes
        ("2026-01-15T14:23:45Z", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T14:23:45z", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T14:23:45.5Z", "2026-01-15T14:23:45.500000+00:00"),
        ("2026-01-15T16:23:45+02:00", "2026-01-15T14:23:45+00:00"),  # no fraction
        ("2026-01-15T16:23:45.000+02:00", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T14:23:45.123456789+00:00", "2026-01-15T14:23:45.123456+00:00"),
        ("2026-01-15T14:23:45", "2026-01-15T14:23:45+00:00"),  # no offset: UTC
        (" 2026-01-15T14:23:45Z ", "2026-01-15T14:23:45+00:00"),
    ],
)
def test_any_api_style_becomes_utc_rfc3339(sent: str, emitted: str):
    assert normalize_timestamp(sent) == emitted


def test_an_offset_that_crosses_midnight_moves_the_date():
    assert normalize_timestamp("2026-01-01T01:30:00.000+0200") == "2025-12-31T23:30:00+00:00"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("offset_minutes", sorted(set(OFFSETS_MINUTES)))
def test_every_style_the_emulator_renders_reads_back_as_the_same_instant(
    style: str, offset_minutes: int
):
    moment = datetime(2026, 3, 29, 1, 59, 58, 7000, tzinfo=timezone.utc)
    parsed = parse_timestamp(render(moment, style, offset_minutes))
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


def test_format_utc_writes_any_aware_instant_in_utc():
    tokyo = datetime(2026, 1, 15, 23, 23, 45, tzinfo=timezone(timedelta(hours=9)))
    assert format_utc(tokyo) == "2026-01-15T14:23:45+00:00"


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_timestamp_stays_null(missing: object):
    assert normalize_timestamp(missing) is None


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2026-13-45T00:00:00Z",  # no such month
        "2026-01-15T25:00:00Z",  # no such hour
        "2026-01-15T14:23:45+25:00",  # offset beyond a day
        "2026-01-15T14:23:45ZZ",
        "   ",
        True,
        float("nan"),
        float("inf"),
        10**30,  # an epoch past any calendar
        ["2026-01-15T14:23:45Z"],
        {"value": "2026-01-15T14:23:45Z"},
    ],
)
def test_a_value_that_is_not_a_timestamp_is_refused(bad: object):
    with pytest.raises(TimestampError):
        normalize_timestamp(bad)


@pytest.mark.parametrize(
    "epoch",
    [1768487025, 1768487025000, 1768487025.0, "1768487025", "1768487025000"],
)
def test_an_epoch_number_in_seconds_or_milliseconds_is_read_as_utc(epoch: object):
    assert normalize_timestamp(epoch) == "2026-01-15T14:23:45+00:00"


def test_an_epoch_with_a_fraction_keeps_it():
    assert normalize_timestamp(1768487025.5) == "2026-01-15T14:23:45.500000+00:00"


def test_the_refusal_quotes_what_was_sent():
    with pytest.raises(TimestampError, match="'yesterday'"):
        parse_timestamp("yesterday")
