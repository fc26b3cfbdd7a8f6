"""Retrying transient failures: bounded in tries and in total time, with jittered backoff.

One policy for the data endpoint and the token endpoint. We use ``backoff``'s wait
generators but not its decorator, because a 429's ``Retry-After`` must replace the
computed wait, which the decorator cannot do per exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import backoff
import requests

T = TypeVar("T")

MAX_TRIES = 6
MAX_TOTAL_SECONDS = 300.0
MAX_SINGLE_WAIT_SECONDS = 60.0


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, a timeout, a broken or truncated reply."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
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
) -> T:
    """Call ``attempt`` until it succeeds, retrying ``TransientError``.

    Gives up after MAX_TRIES tries or MAX_TOTAL_SECONDS, raising ``on_give_up(problem)``.
    """
    expo = backoff.expo(base=2, factor=1, max_value=MAX_SINGLE_WAIT_SECONDS)
    next(expo)  # backoff's generators are primed with one send(None)
    started = clock()
    for tries in range(1, MAX_TRIES + 1):
        try:
            return attempt()
        except TransientError as error:
            elapsed = clock() - started
            if tries == MAX_TRIES or elapsed >= MAX_TOTAL_SECONDS:
                raise on_give_up(
                    f"{error.problem} (gave up after {tries} tries in {elapsed:.0f} s)"
                ) from None
            if error.retry_after is not None:
                wait = min(error.retry_after, MAX_SINGLE_WAIT_SECONDS)
            else:
                # "Equal jitter": never less than half the exponential step, so a
                # server that is down for a while is not spent in a few quick tries.
                step = next(expo)
                wait = step / 2 + backoff.full_jitter(step / 2)
            wait = min(wait, max(0.0, MAX_TOTAL_SECONDS - elapsed))
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


def retry_after_seconds(response: requests.Response) -> float | None:
    """The reply's ``Retry-After`` in seconds, if it carries a usable one."""
    header = response.headers.get("Retry-After")
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None
