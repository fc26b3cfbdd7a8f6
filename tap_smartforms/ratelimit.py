"""Staying under the API's per-token request budget (100 requests per minute)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tap_smartforms.retry import MAX_RETRY_AFTER_SECONDS

WINDOW_SECONDS = 60.0
_MIN_WAIT_SECONDS = 0.001


@dataclass
class _Sent:
    """When a request counts against the window: sent, then (once known) answered."""

    at: float


class SlidingWindowLimiter:
    """At most ``per_minute`` requests in any 60-second window.

    A sliding window, not a token bucket: the API counts requests in the last
    minute, so a burst of ``per_minute`` followed by waiting is exactly what it
    allows, and a normal sync never receives a 429. Thread-safe.

    Requests made inside ``slot()`` count from when their reply arrived, not from
    when they were sent. The server counts a request at some moment between the
    two; a request sent a full window after the previous reply therefore cannot
    land in the same server-side window as it, whatever the delays on the way.
    Counting from the send alone would let a slow first request and a fast
    ``per_minute + 1``-th share a window and earn a 429.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: list[_Sent] = []
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until one more request fits in the window, then count it as sent now."""
        self._take()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a place in the budget for one request, made inside the ``with``."""
        sent = self._take()
        try:
            yield
        finally:
            with self._lock:
                sent.at = max(sent.at, self._clock())

    def push_back(self, seconds: float) -> None:
        """The server said to wait (429): count the window as full for that long.

        At most MAX_RETRY_AFTER_SECONDS, whatever the caller passes: an infinite
        wait would block this data source for good. A wait of zero, less or NaN
        changes nothing (it must not forget the requests already counted).
        """
        if math.isnan(seconds) or seconds <= 0:
            return
        seconds = min(seconds, MAX_RETRY_AFTER_SECONDS)
        with self._lock:
            blocked_until = self._clock() + seconds - WINDOW_SECONDS
            self._sent = [_Sent(blocked_until) for _ in range(self.per_minute)]

    def _take(self) -> _Sent:
        while True:
            with self._lock:
                now = self._clock()
                self._sent = [sent for sent in self._sent if now - sent.at < WINDOW_SECONDS]
                if len(self._sent) < self.per_minute:
                    sent = _Sent(now)
                    self._sent.append(sent)
                    return sent
                # At least a millisecond: a wait of a few ulps would not move a
                # float clock, and the loop would never end.
                wait = max(
                    _MIN_WAIT_SECONDS,
                    WINDOW_SECONDS - (now - min(sent.at for sent in self._sent)),
                )
            self.waited_seconds += wait
            self._sleep(wait)
