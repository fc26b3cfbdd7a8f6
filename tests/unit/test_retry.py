"""Retrying what is transient: Retry-After honoured, bounded in tries and in total time.

``sleep`` and ``clock`` are injected, so no test waits for real.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import requests

from tap_smartforms.retry import (
    MAX_SINGLE_WAIT_SECONDS,
    MAX_TOTAL_SECONDS,
    MAX_TRIES,
    TransientError,
    retry_after_seconds,
    retry_transient,
)

LOGGER = logging.getLogger("test_retry")


class GaveUp(Exception):
    pass


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: TransientError | Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _retry(attempt: Flaky, time: FakeTime, on_retry: Callable[[], None] | None = None) -> str:
    return retry_transient(
        attempt,
        describe="page at offset 0",
        logger=LOGGER,
        on_give_up=GaveUp,
        sleep=time.sleep,
        clock=time.clock,
        on_retry=on_retry,
    )


def test_a_first_success_is_returned_without_waiting():
    time = FakeTime()
    assert _retry(Flaky(), time) == "ok"
    assert time.sleeps == []


def test_transient_failures_are_retried_until_success():
    time = FakeTime()
    attempt = Flaky(TransientError("HTTP 503"), TransientError("HTTP 502"))
    assert _retry(attempt, time) == "ok"
    assert attempt.calls == 3
    assert len(time.sleeps) == 2


def test_retry_after_replaces_the_computed_wait():
    time = FakeTime()
    _retry(Flaky(TransientError("HTTP 429", retry_after=17.0)), time)
    assert time.sleeps == [17.0]


def test_a_zero_retry_after_retries_at_once():
    time = FakeTime()
    _retry(Flaky(TransientError("HTTP 429", retry_after=0.0)), time)
    assert time.sleeps == [0.0]


def test_a_huge_retry_after_is_capped_at_the_single_wait_limit():
    time = FakeTime()
    _retry(Flaky(TransientError("HTTP 429", retry_after=3600.0)), time)
    assert time.sleeps == [MAX_SINGLE_WAIT_SECONDS]


def test_backoff_waits_grow_and_never_fall_below_half_the_step():
    time = FakeTime()
    errors = [TransientError("HTTP 500") for _ in range(MAX_TRIES - 1)]
    _retry(Flaky(*errors), time)
    steps = [2.0**n for n in range(len(time.sleeps))]
    for wait, step in zip(time.sleeps, steps, strict=True):
        assert step / 2 <= wait <= step


def test_it_gives_up_after_max_tries():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 503") for _ in range(MAX_TRIES + 3)])
    with pytest.raises(GaveUp):
        _retry(attempt, time)
    assert attempt.calls == MAX_TRIES
    assert len(time.sleeps) == MAX_TRIES - 1


def test_the_give_up_message_names_the_last_problem_and_the_tries():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 503") for _ in range(MAX_TRIES)])
    with pytest.raises(GaveUp) as raised:
        _retry(attempt, time)
    (message,) = raised.value.args
    assert message.startswith("HTTP 503 (gave up after 6 tries in ")
    assert "\n" not in message


def test_it_gives_up_once_the_total_time_is_spent():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 429", retry_after=60.0) for _ in range(MAX_TRIES)])

    def slow_attempt() -> str:
        time.now += 100.0  # each try itself takes 100 s (a slow gateway timeout)
        return attempt()

    with pytest.raises(GaveUp, match=r"gave up after 3 tries in 400 s"):
        retry_transient(
            slow_attempt,
            describe="page",
            logger=LOGGER,
            on_give_up=GaveUp,
            sleep=time.sleep,
            clock=time.clock,
        )


def test_no_wait_runs_past_the_total_time_budget():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 429", retry_after=60.0) for _ in range(MAX_TRIES)])
    started_at: list[float] = []

    def slow_attempt() -> str:
        started_at.append(time.now)
        time.now += 100.0
        return attempt()

    with pytest.raises(GaveUp):
        retry_transient(
            slow_attempt,
            describe="page",
            logger=LOGGER,
            on_give_up=GaveUp,
            sleep=time.sleep,
            clock=time.clock,
        )
    assert started_at[-1] == MAX_TOTAL_SECONDS  # the last wait was cut to 40 s, not 60
    assert time.sleeps == [60.0, 40.0]


def test_an_error_that_is_not_transient_is_not_retried():
    time = FakeTime()
    attempt = Flaky(KeyError("boom"))
    with pytest.raises(KeyError):
        _retry(attempt, time)
    assert attempt.calls == 1
    assert time.sleeps == []


def test_each_retry_is_counted_and_logged(caplog: pytest.LogCaptureFixture):
    time = FakeTime()
    retries: list[None] = []
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        _retry(
            Flaky(TransientError("HTTP 502"), TransientError("HTTP 504")),
            time,
            on_retry=lambda: retries.append(None),
        )
    assert len(retries) == 2
    assert [record.getMessage().split(";")[0] for record in caplog.records] == [
        "page at offset 0: HTTP 502",
        "page at offset 0: HTTP 504",
    ]


def _response(retry_after: str | None) -> requests.Response:
    response = requests.Response()
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("1.5", 1.5), ("0", 0.0), ("-4", 0.0), (None, None), ("soon", None)],
)
def test_retry_after_is_read_as_seconds_when_usable(header: str | None, seconds: float | None):
    assert retry_after_seconds(_response(header)) == seconds
