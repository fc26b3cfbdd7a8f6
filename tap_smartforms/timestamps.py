"""Timestamps: whatever style the API uses in, UTC RFC 3339 out."""

from __future__ import annotations

import re
from datetime import datetime, timezone

# Jira writes offsets without a colon ("+0000"), which datetime.fromisoformat
# only accepts from Python 3.11 on; we support 3.10, so put the colon back.
_COLONLESS_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
# ... and it wants exactly 3 or 6 fraction digits there; the API may send 1-9.
_FRACTION = re.compile(r"\.(\d+)")


class TimestampError(ValueError):
    """A timestamp the API sent that is not ISO-8601."""


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 instant in any of the API's styles into an aware UTC datetime.

    A timestamp without an offset is taken as UTC.
    """
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    cleaned = _COLONLESS_OFFSET.sub(r"\1:\2", cleaned)
    cleaned = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), cleaned, count=1)
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise TimestampError(f"not an ISO-8601 timestamp: {text!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_utc(moment: datetime) -> str:
    """Render an aware datetime as UTC RFC 3339, e.g. ``2026-01-15T14:23:45+00:00``."""
    return moment.astimezone(timezone.utc).isoformat()


# Epoch numbers above this are milliseconds: as seconds it would be past the year 5000.
_EPOCH_MILLISECONDS_FROM = 100_000_000_000


def parse_epoch(value: float) -> datetime:
    """An epoch number in seconds or milliseconds (told apart by size) as UTC."""
    seconds = value / 1000 if abs(value) >= _EPOCH_MILLISECONDS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise TimestampError(f"not a usable epoch timestamp: {value!r}") from None


def normalize_timestamp(value: object) -> str | None:
    """The API's timestamp (any ISO-8601 style, an epoch number in seconds or
    milliseconds, or null/empty) as UTC RFC 3339, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_utc(parse_epoch(value))
    if not isinstance(value, str):
        raise TimestampError(f"not a timestamp: {value!r}")
    if value.strip().isdigit():
        return format_utc(parse_epoch(int(value)))
    return format_utc(parse_timestamp(value))
