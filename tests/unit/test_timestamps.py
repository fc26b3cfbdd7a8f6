"""Every timestamp style the API uses comes out as UTC RFC 3339."""

from __future__ import annotations

import pytest

from tap_smartforms.timestamps import TimestampError, normalize_timestamp


@pytest.mark.parametrize(
    ("sent", "emitted"),
    [
        ("2026-01-15T14:23:45.000+0000", "2026-01-15T14:23:45+00:00"),  # Jira, no colon
        ("2026-01-15T16:23:45.000+0200", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T09:23:45.123-0500", "2026-01-15T14:23:45.123000+00:00"),
        ("2026-01-15T14:23:45Z", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T14:23:45.5Z", "2026-01-15T14:23:45.500000+00:00"),
        ("2026-01-15T16:23:45+02:00", "2026-01-15T14:23:45+00:00"),
        ("2026-01-15T14:23:45.123456789+00:00", "2026-01-15T14:23:45.123456+00:00"),
        ("2026-01-15T14:23:45", "2026-01-15T14:23:45+00:00"),  # no offset: UTC
        (" 2026-01-15T14:23:45Z ", "2026-01-15T14:23:45+00:00"),
    ],
)
def test_any_api_style_becomes_utc_rfc3339(sent: str, emitted: str):
    assert normalize_timestamp(sent) == emitted


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_timestamp_stays_null(missing: object):
    assert normalize_timestamp(missing) is None


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-45T00:00:00Z", 1768487025, ["2026"]])
def test_a_value_that_is_not_a_timestamp_is_refused(bad: object):
    with pytest.raises(TimestampError):
        normalize_timestamp(bad)
