"""A sliding 60-second window of served requests per token chain."""

from __future__ import annotations

import math
import threading
from collections import deque

WINDOW_SECONDS = 60.0


class ChainRateLimiter:
    """Admits at most ``limit`` requests per chain in any ``window`` seconds (None: no limit).

    Refused requests do not count. Whatever the limit, it remembers the most
    requests it admitted for a chain inside any window, for the stats.
    """

    def __init__(self, limit: int | None, window: float = WINDOW_SECONDS) -> None:
        if limit is not None and limit < 1:
            raise ValueError("rate limit must be >= 1 or None")
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}
        self._most: dict[str, int] = {}
        self._chain_ds: dict[str, str] = {}

    def admit(self, chain_id: str, ds_id: str, now: float) -> int | None:
        """None when admitted, else the whole seconds (>= 1) until a slot frees."""
        with self._lock:
            times = self._admitted.setdefault(chain_id, deque())
            self._chain_ds[chain_id] = ds_id
            while times and times[0] <= now - self.window:
                times.popleft()
            if self.limit is not None and len(times) >= self.limit:
                wait = times[0] + self.window - now
                return max(1, math.ceil(wait))
            times.append(now)
            self._most[chain_id] = max(self._most.get(chain_id, 0), len(times))
            return None

    def windows(self) -> tuple[dict[str, int], dict[str, str]]:
        """(most admitted in any window per chain, the data source of each chain)."""
        with self._lock:
            return dict(self._most), dict(self._chain_ds)
