"""Retrying transient failures: bounded in tries and in total time, with jittered backoff.

One policy for the data endpoint and the token endpoint. We use ``backoff``'s wait
generators but not its decorator, because a 429's ``Retry-After`` must replace the
computed wait, which the decorator cannot do per exception.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

import backoff
import requests

from tap_smartforms.errors import REDACTOR

T = TypeVar("T")

MAX_TRIES = 6
MAX_TOTAL_SECONDS = 300.0
MAX_SINGLE_WAIT_SECONDS = 60.0
# A server's Retry-After is honoured up to this: a longer one is a broken gateway
# or a joke, and a nightly run must not sleep for it.
MAX_RETRY_AFTER_SECONDS = 120.0


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, a timeout, a broken or truncated reply."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        problem = REDACTOR.redact(problem)  # may quote a server or a library; see errors.py
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def retry_transient(
    attempt: Callable[[], T],
    *,
    describe: str,
    logger: logging.Logger,
    on_give_up: Callable[[str], Exception],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[], None] | None = None,
    on_retry_after: Callable[[float], None] | None = None,
    patience_seconds: float = MAX_TOTAL_SECONDS,
) -> T:
    """Call ``attempt`` until it succeeds, retrying ``TransientError``.

    Gives up after MAX_TRIES tries or ``patience_seconds``, raising
    ``on_give_up(problem)``. When the server said how long to wait (429), the wait
    is that, capped at MAX_RETRY_AFTER_SECONDS and at the patience left, and
    ``on_retry_after(wait)`` hears it first (the request budget holds back too).
    """
    expo = backoff.expo(base=2, factor=1, max_value=MAX_SINGLE_WAIT_SECONDS)
    next(expo)  # backoff's generators are primed with one send(None)
    started = clock()
    for tries in range(1, MAX_TRIES + 1):
        try:
            return attempt()
        except TransientError as error:
            elapsed = clock() - started
            if tries == MAX_TRIES or elapsed >= patience_seconds:
                raise on_give_up(
                    f"{error.problem} (gave up after {tries} tries in {elapsed:.0f} s)"
                ) from None
            patience_left = max(0.0, patience_seconds - elapsed)
            if error.retry_after is not None:
                wait = min(_sane_wait(error.retry_after), patience_left)
                if on_retry_after is not None:
                    on_retry_after(wait)
            else:
                # "Equal jitter": never less than half the exponential step, so a
                # server that is down for a while is not spent in a few quick tries.
                step = next(expo)
                wait = min(step / 2 + backoff.full_jitter(step / 2), patience_left)
            logger.warning(
                "%s: %s; retry %d of %d in %.1f s",
                describe,
                error.problem,
                tries,
                MAX_TRIES - 1,
                wait,
            )
            if on_retry is not None:
                on_retry()
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def retry_after_seconds(
    response: requests.Response, *, now: datetime | None = None
) -> float | None:
    """The reply's ``Retry-After`` in seconds (see ``parse_retry_after``)."""
    return parse_retry_after(response.headers.get("Retry-After"), now=now)


def parse_retry_after(header: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds, 0 to MAX_RETRY_AFTER_SECONDS; None if unusable.

    Both forms of RFC 9110: delay-seconds (read leniently: "1.5" too) and an
    HTTP-date, counted from ``now`` (default: the wall clock). Past dates and
    negative delays mean "now"; huge or infinite ones are capped; NaN and garbage
    are ignored (the usual backoff applies).
    """
    if header is None or not header.strip():
        return None
    seconds: float | None
    try:
        seconds = float(header)
    except ValueError:
        seconds = _seconds_until(header, now)
    if seconds is None or math.isnan(seconds):
        return None
    return _sane_wait(seconds)


def _seconds_until(http_date: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as RFC 5322 says
        when = when.replace(tzinfo=timezone.utc)
    return (when - (now or datetime.now(timezone.utc))).total_seconds()


def _sane_wait(seconds: float) -> float:
    """Within 0 to MAX_RETRY_AFTER_SECONDS, whatever a server sent (NaN counts as 0)."""
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
