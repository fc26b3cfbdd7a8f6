"""The refresh gate: no run ends between a token's rotation and its saving.

A refresh spends the refresh token it sends: the moment the server answers, the
only valid token of the chain is the one in the reply, and until the token store
holds it, a process exit loses the chain (the next run sends the spent token, and
after Atlassian's 10-minute reuse window that revokes the chain).

Every refresh runs inside ``REFRESH_GATE.refreshing()``. Every way a run ends calls
``stop_refreshes()``, which forbids new refreshes (they fail with "the run is
stopping") and waits, for at most ``STOP_WAIT_SECONDS``, for those in flight to be
saved. Worker threads are daemon threads (parallel.py), so nothing else would wait
for them. The exit paths (tap.py): the end of ``sync_all`` (normal end, fatal
error, a closed stdout), SIGTERM and SIGINT (through the SDK's handler, which
raises SystemExit in the main thread), and ``atexit`` for any path that bypasses
``sync_all`` (``--test``, the doctor).

A signal can also arrive while the main thread itself refreshes (the doctor does,
and the SDK's handler would raise SystemExit between the POST and the save): there
the gate holds SIGINT and SIGTERM back until the refresh is over, then raises them
again, so whatever handler was installed still runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from tap_smartforms.errors import DataSourceError

# Long enough for one token request with its reply (the token endpoint usually
# answers in well under a second), short enough for an orchestrator's kill timeout.
STOP_WAIT_SECONDS = 30.0
_HELD_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


class RefreshGate:
    """Counts refreshes in flight; once closed, admits no new one. Thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        with self._changed:
            return self._closed

    @property
    def in_flight(self) -> int:
        with self._changed:
            return self._in_flight

    @contextlib.contextmanager
    def refreshing(self, data_source_id: str) -> Iterator[None]:
        """Hold the gate open for one refresh (all its tries, up to the saved token).

        Raises DataSourceError when the run is stopping.
        """
        with self._changed:
            if self._closed:
                raise DataSourceError(
                    data_source_id, "the run is stopping; its access token was not refreshed"
                )
            self._in_flight += 1
        try:
            with _signals_held_in_main_thread():
                yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def pause(self, seconds: float) -> None:
        """Sleep between tries of a refresh; cut short when the run starts stopping."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed, timeout=seconds)

    def close(self, wait_seconds: float = STOP_WAIT_SECONDS) -> bool:
        """Admit no new refresh; wait up to ``wait_seconds`` for those in flight.

        Returns whether none is left in flight. Safe to call again and from any thread.
        """
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout=wait_seconds)

    def reopen(self) -> None:
        """Admit refreshes again: for a process that runs the tap more than once
        (tests run it in process)."""
        with self._changed:
            self._closed = False


REFRESH_GATE = RefreshGate()


def stop_refreshes(wait_seconds: float = STOP_WAIT_SECONDS) -> bool:
    """The one call every exit path makes (module docstring)."""
    return REFRESH_GATE.close(wait_seconds)


@contextlib.contextmanager
def _signals_held_in_main_thread() -> Iterator[None]:
    # Python runs signal handlers in the main thread only, so a refresh in a worker
    # thread cannot be interrupted by one; the main thread's own refresh can.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    previous = {number: signal.signal(number, hold) for number in _HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            # None: a handler installed outside Python, which Python cannot restore.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(arrived):
            signal.raise_signal(number)
