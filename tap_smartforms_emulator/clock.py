"""Clocks the emulator reads, so tests can move time instead of sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

MonotonicClock = Callable[[], float]
"""Seconds on a steady clock (``time.monotonic`` by default): expiry, windows, logs."""

WallClock = Callable[[], datetime]
"""The current instant as an aware UTC datetime: timestamps of edited responses."""


def utc_now() -> datetime:
    """The real current instant, aware, in UTC."""
    return datetime.now(timezone.utc)


class ManualClock:
    """A monotonic clock that only moves when told to; thread-safe.

    >>> clock = ManualClock()
    >>> clock.advance(61.0)
    >>> clock()
    1061.0
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds


class ManualWallClock:
    """A wall clock that only moves when told to; thread-safe."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
