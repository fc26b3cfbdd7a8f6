"""Trouble on demand: queued faults, seeded random faults, persistent failures."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

DATA_FAULTS = frozenset(
    {
        "500", "502", "503", "504", "429", "413", "truncated", "cut", "reset",
        "html", "gzip_corrupt", "gzip_bomb", "drip", "retry_after_absurd", "retry_after_inf",
    }
)  # fmt: skip
"""Kinds for data requests:

- ``500``..``504``, ``413``: that status with an error body;
- ``429``: rate limited, with ``Retry-After: 1``;
- ``retry_after_absurd``: 429 with ``Retry-After: 1000000000`` (about 32 years);
- ``retry_after_inf``: 429 with ``Retry-After: inf``;
- ``truncated``: 200 whose JSON body is cut in half (Content-Length matches the cut body);
- ``cut``: 200 announcing the whole body, sending half, then closing the connection;
- ``drip``: 200 with the page, its body sent one byte every ``drip_interval`` seconds
  (``Emulator`` option), as a stalled proxy does;
- ``reset``: the connection closes without a reply;
- ``html``: 200 with an HTML page (``text/html``), as a proxy's login page;
- ``gzip_corrupt``: 200 with ``Content-Encoding: gzip`` and a body that is not gzip;
- ``gzip_bomb``: 200 with ``Content-Encoding: gzip``, a small body that decodes to
  ``gzip_bomb_bytes`` zeros (``Emulator`` option, default 64 MiB).
"""

TOKEN_FAULTS = frozenset({"500", "502", "503", "504", "429", "reset", "lost_reply", "redirect"})
"""Kinds for token requests; ``lost_reply`` grants (rotating the refresh token) and
then closes the connection without a reply, like a timeout after the server acted;
``redirect`` answers 307 pointing at the token endpoint itself (with ``?redirected=1``),
so a client that follows it sends its secrets again, and that request is counted as
one more token request (and granted)."""

FAILURES = frozenset({"forbidden", "not_found", "bad_request", "scope_mismatch"})
"""Persistent data source failures (see ``FaultPlan.set_failure``)."""

SERVER_ERRORS = ("500", "502", "503", "504")


@dataclass
class _Queued:
    target: str | None
    kind: str
    remaining: int


class FaultPlan:
    """Which data (and token) requests fail, and how. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._token_queue: list[_Queued] = []
        self._failures: dict[str, str] = {}
        self._rng: random.Random | None = None
        self._p_server_error = 0.0
        self._p_truncated = 0.0

    def queue(self, ds_id: str | None, kind: str, count: int = 1) -> None:
        """Fail the next ``count`` data requests of ``ds_id`` (None: of any data source)."""
        if kind not in DATA_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(DATA_FAULTS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._queue.append(_Queued(ds_id, kind, count))

    def queue_token(self, kind: str, count: int = 1) -> None:
        """Fail the next ``count`` token requests."""
        if kind not in TOKEN_FAULTS:
            raise ValueError(
                f"unknown token fault {kind!r}; expected one of {sorted(TOKEN_FAULTS)}"
            )
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._token_queue.append(_Queued(None, kind, count))

    def set_failure(self, ds_id: str, kind: str | None) -> None:
        """Make every request of a data source fail as ``kind`` (None: stop)."""
        if kind is not None and kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; expected one of {sorted(FAILURES)}")
        with self._lock:
            if kind is None:
                self._failures.pop(ds_id, None)
            else:
                self._failures[ds_id] = kind

    def set_random(self, p_server_error: float, p_truncated: float, seed: int) -> None:
        """Fail data requests at random, reproducibly for a given request order."""
        if min(p_server_error, p_truncated) < 0 or p_server_error + p_truncated > 1:
            raise ValueError("probabilities must be >= 0 and add up to at most 1")
        with self._lock:
            self._rng = random.Random(seed)
            self._p_server_error = p_server_error
            self._p_truncated = p_truncated

    def failure(self, ds_id: str) -> str | None:
        with self._lock:
            return self._failures.get(ds_id)

    def next_fault(self, ds_id: str) -> str | None:
        """The fault for this data request, consumed from the queue, else drawn at random."""
        with self._lock:
            kind = self._take(self._queue, ds_id)
            if kind is not None or self._rng is None:
                return kind
            roll = self._rng.random()
            if roll < self._p_server_error:
                return self._rng.choice(SERVER_ERRORS)
            if roll < self._p_server_error + self._p_truncated:
                return "truncated"
            return None

    def next_token_fault(self) -> str | None:
        with self._lock:
            return self._take(self._token_queue, None)

    @staticmethod
    def _take(queue: list[_Queued], ds_id: str | None) -> str | None:
        for index, entry in enumerate(queue):
            if entry.target is None or entry.target == ds_id:
                entry.remaining -= 1
                if entry.remaining == 0:
                    del queue[index]
                return entry.kind
        return None
