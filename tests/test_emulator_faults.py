"""The emulator's injected faults: status codes, broken replies, drips, persistent
failures, latency.

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tap_smartforms_emulator import (
    FormSpec,
)
from tests.emulator_http import (
    EmulatorFactory,
    access_token,
    get_page,
)

# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "429", "413"])
def test_queued_status_faults(
    emulator: EmulatorFactory, session: requests.Session, kind: str
) -> None:
    emu = emulator(forms=[FormSpec(responses=5, seed=1), FormSpec(responses=5, seed=1)])
    first, second = emu.data_source_ids
    token = access_token(session, emu, first)
    emu.queue_fault(first, kind, count=2)
    other = get_page(session, emu, second, access_token(session, emu, second))
    assert other.status_code == 200  # another data source is not affected
    for _ in range(2):
        reply = get_page(session, emu, first, token)
        assert reply.status_code == int(kind)
        assert reply.headers["atl-traceid"]
    if kind == "429":
        assert reply.headers["Retry-After"] == "1"
    assert get_page(session, emu, first, token).status_code == 200


def test_truncated_cut_and_reset_faults(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    emu.queue_fault(None, "truncated")
    emu.queue_fault(ds, "cut")
    emu.queue_fault(ds, "reset")
    truncated = get_page(session, emu, ds, token)
    assert truncated.status_code == 200
    with pytest.raises(ValueError, match=r"."):
        truncated.json()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get_page(session, emu, ds, token)
    with pytest.raises(requests.ConnectionError):
        get_page(session, emu, ds, token)
    assert get_page(session, emu, ds, token).status_code == 200
    assert emu.stats.status_counts == {200: 3, 0: 1}


@pytest.mark.parametrize(
    ("kind", "retry_after"), [("retry_after_absurd", "1000000000"), ("retry_after_inf", "inf")]
)
def test_absurd_retry_after_faults(
    emulator: EmulatorFactory, session: requests.Session, kind: str, retry_after: str
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    emu.queue_fault(ds, kind)
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == retry_after
    assert get_page(session, emu, ds, token).status_code == 200


def test_html_and_gzip_faults(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator(gzip_bomb_bytes=200_000)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    for kind in ("html", "gzip_corrupt", "gzip_bomb"):
        emu.queue_fault(ds, kind)
    html = get_page(session, emu, ds, token)
    assert (html.status_code, html.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert html.text.startswith("<!DOCTYPE html>")
    with pytest.raises(requests.exceptions.ContentDecodingError):
        get_page(session, emu, ds, token)
    bomb = get_page(session, emu, ds, token)
    assert bomb.headers["Content-Encoding"] == "gzip"
    assert int(bomb.headers["Content-Length"]) < 2_000
    assert bomb.content == bytes(200_000)
    assert get_page(session, emu, ds, token).status_code == 200


def test_a_drip_sends_the_page_a_byte_at_a_time_and_stop_ends_it_at_once(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(drip_interval=0.05)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    emu.queue_fault(ds, "drip")
    reply = session.get(
        emu.data_source_url(ds),
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=5,
    )
    assert reply.status_code == 200
    started = time.monotonic()
    first = reply.raw.read(4)
    assert first == b'{"fo'
    assert time.monotonic() - started >= 3 * 0.05
    assert int(reply.headers["Content-Length"]) > 1000  # minutes of dripping left
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        reply.content  # noqa: B018 - reading the rest: the connection was closed


def test_random_faults_are_reproducible(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    def statuses() -> list[int]:
        emu = emulator(forms=[FormSpec(responses=3, seed=1)], rate_limit_per_minute=None)
        (ds,) = emu.data_source_ids
        emu.random_faults(p_server_error=0.4, p_truncated=0.2, seed=11)
        token = access_token(session, emu, ds)
        result = []
        for _ in range(20):
            reply = get_page(session, emu, ds, token)
            ok = reply.status_code == 200 and reply.content.endswith(b"}")
            result.append(reply.status_code if not ok else 1)
        return result

    first = statuses()
    assert first == statuses()
    assert {500, 502, 503, 504} & set(first)
    assert 200 in first  # truncated ones
    assert 1 in first


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        ("forbidden", 403, {"error": "forbidden"}),
        ("not_found", 404, {"error": "not_found"}),
        ("bad_request", 400, {"error": "bad_request"}),
        ("scope_mismatch", 401, {"code": 401, "message": "Unauthorized; scope does not match"}),
    ],
)
def test_data_source_failures_persist_until_cleared(
    emulator: EmulatorFactory,
    session: requests.Session,
    kind: str,
    status: int,
    body: dict[str, Any],
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    emu.set_data_source_failure(ds, kind)
    for _ in range(2):
        reply = get_page(session, emu, ds, token)
        assert reply.status_code == status
        assert body.items() <= reply.json().items()
    if kind == "scope_mismatch":
        assert reply.headers["x-failure-category"]
    emu.set_data_source_failure(ds, None)
    assert get_page(session, emu, ds, token).status_code == 200


def test_latency_is_added_to_data_requests(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(latency=0.05)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    started = time.monotonic()
    get_page(session, emu, ds, token, limit=1)
    assert time.monotonic() - started >= 0.05
