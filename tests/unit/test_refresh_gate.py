"""The refresh gate: closing it stops new refreshes and waits for those in flight."""

from __future__ import annotations

import threading
import time

import pytest

from tap_smartforms.errors import DataSourceError
from tap_smartforms.refresh_gate import RefreshGate


def test_close_waits_for_the_refresh_in_flight_then_admits_none():
    gate = RefreshGate()
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    outcome: list[bool] = []

    def refresh() -> None:
        with gate.refreshing("ds-1"):
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=refresh)
    worker.start()
    entered.wait(10)
    closer = threading.Thread(target=lambda: (outcome.append(gate.close(10)), closed.set()))
    closer.start()

    assert not closed.wait(0.2)  # still waiting: the refresh has not finished
    release.set()
    assert closed.wait(10)
    assert outcome == [True]
    with pytest.raises(DataSourceError, match="ds-2: the run is stopping"), gate.refreshing("ds-2"):
        pass
    worker.join(10)
    closer.join(10)


def test_close_gives_up_after_its_wait_and_says_so():
    gate = RefreshGate()
    with gate.refreshing("ds-1"):
        assert gate.close(0.05) is False
    assert gate.in_flight == 0


def test_a_pause_between_tries_ends_when_the_gate_closes():
    gate = RefreshGate()
    threading.Timer(0.1, gate.close, kwargs={"wait_seconds": 0}).start()
    started = time.monotonic()
    gate.pause(30)
    assert time.monotonic() - started < 5
