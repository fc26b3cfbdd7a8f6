"""Retrying what is transient: Retry-After honoured, bounded in tries and in total time.

``sleep`` and ``clock`` are injected, so no test waits for real.
"""

from __future__ import annotations

import email.utils
import logging
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from tap_smartforms.retry import (
    MAX_RETRY_AFTER_SECONDS,
    MAX_SINGLE_WAIT_SECONDS,
    MAX_TOTAL_SECONDS,
    MAX_TRIES,
    TransientError,
    parse_retry_after,
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


def _retry(
    attempt: Callable[[], str],
    time: FakeTime,
    on_retry: Callable[[], None] | None = None,
    **options: Any,
) -> str:
    return retry_transient(
        attempt,
        describe="page at offset 0",
        logger=LOGGER,
        on_give_up=GaveUp,
        sleep=time.sleep,
        clock=time.clock,
        on_retry=on_retry,
        **options,
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


@pytest.mark.parametrize("retry_after", [3600.0, 1e12, math.inf])
def test_a_huge_retry_after_is_capped(retry_after: float):
    time = FakeTime()
    _retry(Flaky(TransientError("HTTP 429", retry_after=retry_after)), time)
    assert time.sleeps == [MAX_RETRY_AFTER_SECONDS]


@pytest.mark.parametrize("retry_after", [-5.0, math.nan])
def test_a_negative_or_nan_retry_after_retries_at_once(retry_after: float):
    time = FakeTime()
    _retry(Flaky(TransientError("HTTP 429", retry_after=retry_after)), time)
    assert time.sleeps == [0.0]


def test_a_retry_after_never_outlasts_the_patience_left_and_the_budget_hears_it():
    time = FakeTime()
    heard: list[float] = []
    attempt = Flaky(*[TransientError("HTTP 429", retry_after=1e9) for _ in range(MAX_TRIES)])
    with pytest.raises(GaveUp, match=r"gave up after 2 tries in 5 s"):
        _retry(attempt, time, on_retry_after=heard.append, patience_seconds=5.0)
    assert time.sleeps == [5.0]
    assert heard == [5.0]


def test_backoff_waits_are_cut_to_the_patience_left_too():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 503") for _ in range(MAX_TRIES)])
    with pytest.raises(GaveUp):
        _retry(attempt, time, patience_seconds=2.5)
    assert sum(time.sleeps) == pytest.approx(2.5)
    assert MAX_SINGLE_WAIT_SECONDS > 2.5


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
        _retry(slow_attempt, time)


def test_no_wait_runs_past_the_total_time_budget():
    time = FakeTime()
    attempt = Flaky(*[TransientError("HTTP 429", retry_after=60.0) for _ in range(MAX_TRIES)])
    started_at: list[float] = []

    def slow_attempt() -> str:
        started_at.append(time.now)
        time.now += 100.0
        return attempt()

    with pytest.raises(GaveUp):
        _retry(slow_attempt, time)
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


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1000000000", MAX_RETRY_AFTER_SECONDS),
        ("1e12", MAX_RETRY_AFTER_SECONDS),
        ("inf", MAX_RETRY_AFTER_SECONDS),
        ("Infinity", MAX_RETRY_AFTER_SECONDS),
        ("-inf", 0.0),
        ("nan", None),
        ("", None),
        ("  ", None),
        ("120.5", MAX_RETRY_AFTER_SECONDS),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_SECONDS),
        ("Sun, 01 Mar 2026 12:01:00 -0000", 60.0),
        ("Sunday, 99 Foo 2026", None),
    ],
)
def test_retry_after_is_sane_whatever_the_server_sends(header: str, seconds: float | None):
    assert parse_retry_after(header, now=NOW) == seconds


def test_an_http_date_retry_after_counts_from_the_wall_clock_by_default():
    in_a_minute = datetime.now(timezone.utc).timestamp() + 60
    header = email.utils.formatdate(in_a_minute, usegmt=True)
    seconds = retry_after_seconds(_response(header))
    assert seconds is not None
    assert 55.0 <= seconds <= 60.0
