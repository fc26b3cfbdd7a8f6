"""Instants: integer microseconds, the API's rendering styles, and query parsing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

STYLES = ("jira", "zulu", "colon_millis", "colon")
"""How the API may render one instant (see docs/api-contract.md §4):

- ``jira``:         ``2026-01-15T16:23:45.000+0200`` (always milliseconds, offset without colon)
- ``zulu``:         ``2026-01-15T14:23:45Z`` (UTC; milliseconds only when not zero)
- ``colon_millis``: ``2026-01-15T16:23:45.000+02:00``
- ``colon``:        ``2026-01-15T09:23:45-05:00`` (milliseconds only when not zero)
"""

OFFSETS_MINUTES = (0, 0, 0, 120, -300, 60, 330, 540, -420, 345, -210)
"""Offsets a site's time zone may have; UTC is the most common."""


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, comparable)."""
    return (moment - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=micros)


def to_truth(moment: datetime) -> str:
    """The data model's rendering: ``datetime.isoformat()`` of the instant in UTC."""
    return moment.astimezone(timezone.utc).isoformat()


def render(moment: datetime, style: str = "jira", offset_minutes: int = 0) -> str:
    """Render an aware instant in one of ``STYLES`` at a UTC offset (ignored for ``zulu``)."""
    millis = moment.microsecond // 1000
    if style == "zulu":
        utc = moment.astimezone(timezone.utc)
        fraction = f".{millis:03d}" if millis else ""
        return f"{utc.isoformat(timespec='seconds')[:19]}{fraction}Z"
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    base = local.isoformat(timespec="seconds")[:19]
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    if style == "jira":
        return f"{base}.{millis:03d}{sign}{hours:02d}{minutes:02d}"
    if style == "colon_millis":
        return f"{base}.{millis:03d}{sign}{hours:02d}:{minutes:02d}"
    if style == "colon":
        fraction = f".{millis:03d}" if millis else ""
        return f"{base}{fraction}{sign}{hours:02d}:{minutes:02d}"
    raise ValueError(f"unknown timestamp style {style!r}")


_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})"
)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant with ``Z``, ``+00:00`` or ``+0000`` style offset.

    An instant without an offset is ambiguous and rejected, like anything else
    that does not match: raises ``ValueError``.
    """
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 instant with an offset: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    offset_text = match.group(8)
    if offset_text == "Z":
        offset = timedelta(0)
    else:
        digits = offset_text[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset_text[0] == "-":
            offset = -offset
    if offset >= timedelta(hours=24):
        raise ValueError(f"offset out of range: {text!r}")
    local = datetime(year, month, day, hour, minute, second, int(fraction), timezone(offset))
    return local.astimezone(timezone.utc)
