"""The per-token budget: at most ``per_minute`` requests in any 60 seconds, never a 429.

A fake clock stands in for time: ``sleep`` moves it forward, so no test waits.
"""

from __future__ import annotations

import math
import random
import threading

import pytest

from tap_smartforms.ratelimit import WINDOW_SECONDS, SlidingWindowLimiter
from tap_smartforms.retry import MAX_RETRY_AFTER_SECONDS


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _limiter(per_minute: int, time: FakeTime) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(per_minute, clock=time.clock, sleep=time.sleep)


def test_a_full_budget_is_granted_at_once():
    time = FakeTime()
    limiter = _limiter(100, time)
    for _ in range(100):
        limiter.acquire()
    assert time.sleeps == []
    assert limiter.waited_seconds == 0


def test_one_request_over_budget_waits_until_the_first_leaves_the_window():
    time = FakeTime()
    limiter = _limiter(3, time)
    for _ in range(3):
        limiter.acquire()
        time.now += 5
    limiter.acquire()
    assert time.sleeps == [pytest.approx(WINDOW_SECONDS - 15)]
    assert limiter.waited_seconds == pytest.approx(WINDOW_SECONDS - 15)


def test_no_sixty_second_window_ever_holds_more_than_the_budget():
    time = FakeTime()
    limiter = _limiter(5, time)
    granted: list[float] = []
    for _ in range(23):
        limiter.acquire()
        granted.append(time.now)
        time.now += 1.5
    for start in granted:
        in_window = [t for t in granted if start <= t < start + WINDOW_SECONDS]
        assert len(in_window) <= 5


def test_requests_older_than_a_minute_no_longer_count():
    time = FakeTime()
    limiter = _limiter(2, time)
    limiter.acquire()
    limiter.acquire()
    time.now += WINDOW_SECONDS
    limiter.acquire()
    assert time.sleeps == []


def test_a_429_retry_after_holds_back_every_request_for_that_long():
    time = FakeTime()
    limiter = _limiter(100, time)
    limiter.push_back(7.0)
    limiter.acquire()
    assert sum(time.sleeps) == pytest.approx(7.0)


def test_after_a_push_back_the_full_budget_is_available_again():
    time = FakeTime()
    limiter = _limiter(4, time)
    limiter.push_back(3.0)
    for _ in range(4):
        limiter.acquire()
    assert sum(time.sleeps) == pytest.approx(3.0)


@pytest.mark.parametrize("per_minute", [0, -1])
def test_a_budget_below_one_is_refused(per_minute: int):
    with pytest.raises(ValueError, match="per_minute"):
        SlidingWindowLimiter(per_minute)


def test_threads_sharing_a_limiter_get_no_more_than_the_budget_without_waiting():
    time = FakeTime()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            time.sleep(seconds)

    limiter = SlidingWindowLimiter(50, clock=time.clock, sleep=sleep)
    workers = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(10)]) for _ in range(5)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert time.sleeps == []
    limiter.acquire()
    assert len(time.sleeps) == 1


def test_a_request_counts_from_when_its_reply_arrived():
    time = FakeTime()
    limiter = _limiter(1, time)
    with limiter.slot():
        time.now += 10  # a slow reply
    limiter.acquire()
    assert time.sleeps == [pytest.approx(WINDOW_SECONDS)]


@pytest.mark.parametrize("seed", range(20))
def test_a_server_counting_on_arrival_never_sees_more_than_the_budget(seed: int):
    # The server counts each request at some moment between its send and its reply;
    # whatever the delays, no 60 s window there holds more than the budget.
    rng = random.Random(seed)
    time = FakeTime()
    limiter = _limiter(4, time)
    arrivals: list[float] = []
    for _ in range(40):
        with limiter.slot():
            arrivals.append(time.now + rng.uniform(0, 3))
            time.now += 3 + rng.uniform(0, 3)
        time.now += rng.choice([0, 0, 1, 20])
    for start in arrivals:
        assert sum(start <= t < start + WINDOW_SECONDS for t in arrivals) <= 4


@pytest.mark.parametrize("seconds", [math.inf, 1e12, MAX_RETRY_AFTER_SECONDS + 1])
def test_a_push_back_is_capped_so_the_budget_never_blocks_for_good(seconds: float):
    time = FakeTime()
    limiter = _limiter(100, time)
    limiter.push_back(seconds)
    limiter.acquire()
    assert sum(time.sleeps) == pytest.approx(MAX_RETRY_AFTER_SECONDS)


@pytest.mark.parametrize("seconds", [math.nan, -3.0, -math.inf, 0.0])
def test_a_push_back_of_nothing_holds_nothing_back_and_forgets_nothing(seconds: float):
    time = FakeTime()
    limiter = _limiter(2, time)
    limiter.acquire()
    limiter.acquire()
    limiter.push_back(seconds)
    limiter.acquire()  # the two counted requests still fill the window
    assert time.sleeps == [pytest.approx(WINDOW_SECONDS)]
