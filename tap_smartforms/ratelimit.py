"""Staying under the API's per-token request budget (100 requests per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """At most ``per_minute`` acquisitions in any 60-second window.

    A sliding window, not a token bucket: the API counts requests in the last
    minute, so a burst of ``per_minute`` followed by waiting is exactly what it
    allows, and a normal sync never receives a 429. Thread-safe.
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
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until one more request fits in the window, then count it."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= WINDOW_SECONDS:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                wait = WINDOW_SECONDS - (now - self._sent[0])
            self.waited_seconds += wait
            self._sleep(wait)

    def push_back(self, seconds: float) -> None:
        """The server said to wait (429): count the window as full for that long."""
        with self._lock:
            now = self._clock()
            blocked_until = now + seconds - WINDOW_SECONDS
            self._sent = deque([blocked_until] * self.per_minute)
