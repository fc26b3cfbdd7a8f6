"""Specification of the Smart Forms API emulator itself (tap_smartforms_emulator).

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_smartforms_emulator import (
    COLUMNS,
    PRIMARY_KEYS,
    QUESTION_TYPES,
    STREAMS,
    Emulator,
    FormSpec,
    ManualClock,
    ManualWallClock,
    value_text,
)
from tap_smartforms_emulator.timefmt import STYLES, parse_instant, render

REPO = Path(__file__).resolve().parent.parent
UTC_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00")
EmulatorFactory = Callable[..., Emulator]


@pytest.fixture
def make_emulator() -> Iterator[EmulatorFactory]:
    """Build and start emulators; stop them all after the test."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        kwargs.setdefault("forms", [FormSpec(responses=60, seed=1)])
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def token_request(session: requests.Session, emu: Emulator, **params: str) -> requests.Response:
    body = {"client_id": emu.client_id, "client_secret": emu.client_secret, **params}
    return session.post(emu.token_url, json=body, timeout=5)


def refresh(session: requests.Session, emu: Emulator, refresh_token: str) -> requests.Response:
    return token_request(session, emu, grant_type="refresh_token", refresh_token=refresh_token)


def access_token(session: requests.Session, emu: Emulator, ds_id: str) -> str:
    reply = refresh(session, emu, emu.refresh_token(ds_id))
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def get_page(
    session: requests.Session, emu: Emulator, ds_id: str, token: str | None, **params: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return session.get(emu.data_source_url(ds_id), params=params, headers=headers, timeout=5)


def page_ids(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [r["id"] for r in reply.json()["responses"]]


# --------------------------------------------------------------------------- paging


def test_pages_walk_every_response_once_in_api_order(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=120, seed=3)])
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    seen: list[str] = []
    for offset in range(0, 150, 50):
        reply = get_page(session, emu, ds, token, offset=offset, limit=50)
        page = reply.json()
        assert list(page) == ["form", "responses", "total", "offset", "limit"]
        assert (page["total"], page["offset"], page["limit"]) == (120, offset, 50)
        assert page["form"]["questions"]
        seen += page_ids(reply)
    assert seen == emu.response_ids(ds)
    assert len(set(seen)) == 120
    assert reply.headers["atl-traceid"]
    assert int(reply.headers["Content-Length"]) == len(reply.content)


def test_default_limit_is_500_and_offset_past_the_end_is_empty(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=510, messy=False, seed=1)])
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    first = get_page(session, emu, ds, token).json()
    assert (len(first["responses"]), first["limit"], first["offset"]) == (500, 500, 0)
    assert page_ids(get_page(session, emu, ds, token, offset=600)) == []


def test_api_order_is_created_at_then_id(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(forms=[FormSpec(responses=400, seed=5)])
    records = emu.truth()["responses"]
    keys = [(datetime.fromisoformat(r["created_at"]), r["id"]) for r in records]
    assert keys == sorted(keys)
    created = [k[0] for k in keys]
    assert len(set(created)) < len(created), "messy data should contain createdAt ties"


def test_omit_paging_fields(make_emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = make_emulator(omit_paging_fields=True)
    (ds,) = emu.data_source_ids
    page = get_page(session, emu, ds, access_token(session, emu, ds), limit=10).json()
    assert list(page) == ["form", "responses"]
    assert len(page["responses"]) == 10


def test_connections_stay_open_between_requests(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    host, port = emu.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        body = json.dumps(
            {
                "grant_type": "refresh_token",
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "refresh_token": emu.refresh_token(ds),
            }
        )
        connection.request("POST", "/oauth/token", body, {"Content-Type": "application/json"})
        token = json.loads(connection.getresponse().read())["access_token"]
        path = emu.data_source_url(ds).removeprefix(emu.base_url)
        for _ in range(3):
            connection.request(
                "GET", f"{path}&limit=5", headers={"Authorization": f"Bearer {token}"}
            )
            reply = connection.getresponse()
            assert reply.status == 200
            assert len(json.loads(reply.read())["responses"]) == 5
            assert reply.getheader("atl-traceid")
    finally:
        connection.close()


# --------------------------------------------------------------------------- updatedFrom


def test_updated_from_filters_before_paging_in_every_style(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=200, seed=8)])
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    records = emu.truth()["responses"]
    updated = sorted(datetime.fromisoformat(r["updated_at"]) for r in records)
    bound = updated[len(updated) // 2]
    expected = [r["id"] for r in emu.truth(updated_since=bound)["responses"]]
    assert expected == [
        r["id"] for r in records if datetime.fromisoformat(r["updated_at"]) >= bound
    ]
    assert 0 < len(expected) < len(records)
    styles = {render(bound, style, offset) for style in STYLES for offset in (0, 120, -300)}
    styles.add(bound.isoformat())
    for text in styles:
        first = get_page(session, emu, ds, token, updatedFrom=text, limit=30)
        second = get_page(session, emu, ds, token, updatedFrom=text, limit=500, offset=30)
        assert first.json()["total"] == len(expected), text
        assert page_ids(first) + page_ids(second) == expected, text


def test_ignore_updated_from_serves_everything(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(ignore_updated_from=True)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    reply = get_page(session, emu, ds, token, updatedFrom="2030-01-01T00:00:00Z")
    assert reply.json()["total"] == 60


# --------------------------------------------------------------------------- request errors


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"limit": "5.0"},
        {"limit": "-1"},
        {"offset": "-1"},
        {"offset": "x"},
        {"updatedFrom": "yesterday"},
        {"updatedFrom": "2026-01-01T00:00:00"},
        {"updatedFrom": "2026-01-01T00:00:00 00:00"},
    ],
)
def test_bad_parameters_are_400(
    make_emulator: EmulatorFactory, session: requests.Session, params: dict[str, str]
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, ds, access_token(session, emu, ds), **params)
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"
    assert reply.json()["message"]


@pytest.mark.parametrize("query", ["", "?dataSourceId=", "?limit=5"])
def test_missing_data_source_id_is_400(
    make_emulator: EmulatorFactory, session: requests.Session, query: str
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    url = emu.data_source_url(ds).partition("?")[0] + query
    reply = session.get(url, headers={"Authorization": f"Bearer {access_token(session, emu, ds)}"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"


def test_unknown_data_source_is_404(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, "ds-nope", access_token(session, emu, ds))
    assert reply.status_code == 404
    assert reply.json() == {"error": "not_found", "message": "Data source ds-nope not found"}


def test_token_of_another_data_source_is_403(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=5, seed=1), FormSpec(responses=5, seed=1)])
    first, second = emu.data_source_ids
    reply = get_page(session, emu, second, access_token(session, emu, first))
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden"


@pytest.mark.parametrize("token", [None, "at-unknown"])
def test_missing_or_unknown_access_token_is_401(
    make_emulator: EmulatorFactory, session: requests.Session, token: str | None
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 401
    assert reply.json() == {"code": 401, "message": "Unauthorized"}


def test_access_token_expires_after_its_ttl(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = make_emulator(clock=clock, access_token_ttl=0.5)
    (ds,) = emu.data_source_ids
    reply = refresh(session, emu, emu.refresh_token(ds))
    assert reply.json()["expires_in"] == 1
    token = reply.json()["access_token"]
    assert get_page(session, emu, ds, token, limit=1).status_code == 200
    clock.advance(0.5)
    assert get_page(session, emu, ds, token, limit=1).status_code == 401


def test_body_over_max_is_413(make_emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = make_emulator(max_body_bytes=30_000)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 413
    assert reply.json()["error"] == "payload_too_large"
    assert get_page(session, emu, ds, token, limit=1).status_code == 200


def test_unknown_paths_and_methods(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
    assert session.get(f"{emu.base_url}/rest/api/3/myself").status_code == 404
    assert session.get(emu.token_url).status_code == 405
    (ds,) = emu.data_source_ids
    assert session.post(emu.data_source_url(ds)).status_code == 405


# --------------------------------------------------------------------------- tokens


def test_refresh_rotates_and_the_old_token_has_a_reuse_window(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = make_emulator(clock=clock, reuse_window=0.2)
    (ds,) = emu.data_source_ids
    initial = emu.refresh_token(ds)
    first = refresh(session, emu, initial).json()
    assert set(first) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert first["token_type"] == "Bearer"
    assert first["refresh_token"].startswith("rt-")
    assert first["refresh_token"] != initial
    assert first["access_token"].startswith("at-")
    # A retry with the old token inside the window gets a valid pair of the chain.
    clock.advance(0.1)
    stale = refresh(session, emu, initial)
    assert stale.status_code == 200
    assert stale.json()["refresh_token"] == first["refresh_token"]
    assert get_page(session, emu, ds, stale.json()["access_token"], limit=1).status_code == 200
    assert emu.stats.stale_refresh_uses == 1
    # The current token keeps rotating.
    second = refresh(session, emu, first["refresh_token"]).json()
    assert second["refresh_token"] not in (initial, first["refresh_token"])
    assert emu.stats.refreshes == 3


def test_reusing_a_rotated_token_after_the_window_revokes_the_chain(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = make_emulator(clock=clock, reuse_window=0.2)
    (ds,) = emu.data_source_ids
    initial = emu.refresh_token(ds)
    pair = refresh(session, emu, initial).json()
    clock.advance(0.3)
    reply = refresh(session, emu, initial)
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }
    assert refresh(session, emu, pair["refresh_token"]).status_code == 403
    assert get_page(session, emu, ds, pair["access_token"]).status_code == 401
    stats = emu.stats
    assert (stats.revoked_chains, stats.revoked_chain_data_sources) == (1, [ds])
    assert stats.invalid_grants == 2


def test_revoke_chain(make_emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    pair = refresh(session, emu, emu.refresh_token(ds)).json()
    emu.revoke_chain(ds)
    assert refresh(session, emu, pair["refresh_token"]).json()["error"] == "invalid_grant"
    assert get_page(session, emu, ds, pair["access_token"]).status_code == 401
    assert emu.stats.revoked_chain_data_sources == [ds]


def test_wrong_client_and_unknown_tokens(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    wrong = session.post(
        emu.token_url,
        json={
            "grant_type": "refresh_token",
            "client_id": emu.client_id,
            "client_secret": "nope",
            "refresh_token": emu.refresh_token(ds),
        },
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.json()["error_description"]
    unknown = refresh(session, emu, "rt-unknown")
    assert (unknown.status_code, unknown.json()["error"]) == (403, "invalid_grant")
    assert token_request(session, emu, grant_type="password").status_code == 400
    assert emu.stats.token_status_counts == {401: 1, 403: 1, 400: 1}


def test_form_encoded_token_requests_work(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    reply = session.post(
        emu.token_url,
        data={
            "grant_type": "refresh_token",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "refresh_token": emu.refresh_token(ds),
        },
    )
    assert reply.status_code == 200
    assert reply.json()["refresh_token"] != emu.refresh_token(ds)


def test_authorization_code_starts_a_new_chain_once(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = make_emulator(clock=clock)
    (ds,) = emu.data_source_ids
    code = emu.authorization_code(ds)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": "x:/y"}
    pair = token_request(session, emu, **exchange).json()
    assert get_page(session, emu, ds, pair["access_token"], limit=1).status_code == 200
    assert refresh(session, emu, pair["refresh_token"]).status_code == 200
    assert token_request(session, emu, **exchange).status_code == 403  # single use
    late = emu.authorization_code(ds)
    clock.advance(300)
    assert token_request(session, emu, **{**exchange, "code": late}).status_code == 403
    assert emu.stats.code_exchanges == 1
    # The chain made at construction is untouched.
    assert refresh(session, emu, emu.refresh_token(ds)).status_code == 200


def test_without_rotation_the_refresh_token_stays(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(omit_refresh_token_in_reply=True)
    (ds,) = emu.data_source_ids
    for _ in range(3):
        reply = refresh(session, emu, emu.refresh_token(ds))
        assert reply.status_code == 200
        assert "refresh_token" not in reply.json()
    assert emu.stats.stale_refresh_uses == 0


def test_lost_token_reply_then_retry_inside_the_window(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    emu.queue_token_fault("lost_reply")
    with pytest.raises(requests.ConnectionError):
        refresh(session, emu, emu.refresh_token(ds))
    retry = refresh(session, emu, emu.refresh_token(ds))
    assert retry.status_code == 200
    assert emu.stats.stale_refresh_uses == 1


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_is_a_sliding_window_per_chain(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = make_emulator(
        clock=clock,
        rate_limit_per_minute=3,
        forms=[FormSpec(responses=5, seed=1), FormSpec(responses=5, seed=1)],
    )
    first, second = emu.data_source_ids
    token = access_token(session, emu, first)
    for _ in range(3):
        assert get_page(session, emu, first, token, limit=1).status_code == 200
        clock.advance(10)
    refused = get_page(session, emu, first, token, limit=1)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "30"
    clock.advance(29.5)
    assert get_page(session, emu, first, token, limit=1).headers["Retry-After"] == "1"
    # Another chain has its own budget.
    assert get_page(session, emu, second, access_token(session, emu, second)).status_code == 200
    clock.advance(0.5)
    assert get_page(session, emu, first, token, limit=1).status_code == 200
    stats = emu.stats
    assert (stats.served_429, stats.rate_limited) == (2, 2)
    assert stats.max_requests_in_any_60s_window_by_ds == {first: 3, second: 1}
    assert [entry.status for entry in stats.request_log if entry.ds_id == first] == [
        200, 200, 200, 429, 429, 200,
    ]  # fmt: skip


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "429", "413"])
def test_queued_status_faults(
    make_emulator: EmulatorFactory, session: requests.Session, kind: str
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=5, seed=1), FormSpec(responses=5, seed=1)])
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
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator()
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
    make_emulator: EmulatorFactory, session: requests.Session, kind: str, retry_after: str
) -> None:
    emu = make_emulator()
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    emu.queue_fault(ds, kind)
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == retry_after
    assert get_page(session, emu, ds, token).status_code == 200


def test_html_and_gzip_faults(make_emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = make_emulator(gzip_bomb_bytes=200_000)
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
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(drip_interval=0.05)
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
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    def statuses() -> list[int]:
        emu = make_emulator(forms=[FormSpec(responses=3, seed=1)], rate_limit_per_minute=None)
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
    make_emulator: EmulatorFactory,
    session: requests.Session,
    kind: str,
    status: int,
    body: dict[str, Any],
) -> None:
    emu = make_emulator()
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
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(latency=0.05)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    started = time.monotonic()
    get_page(session, emu, ds, token, limit=1)
    assert time.monotonic() - started >= 0.05


# --------------------------------------------------------------------------- edits


def test_insert_update_delete(make_emulator: EmulatorFactory, session: requests.Session) -> None:
    wall = ManualWallClock(datetime(2026, 11, 1, tzinfo=timezone.utc))
    emu = make_emulator(wall_clock=wall)
    (ds,) = emu.data_source_ids
    before = emu.truth()
    ids = emu.response_ids(ds)

    new_id = emu.insert_response(ds)
    assert emu.response_ids(ds) == [*ids, new_id]
    inserted = emu.truth()["responses"][-1]
    assert inserted["id"] == new_id
    assert inserted["created_at"] == inserted["updated_at"] == "2026-11-01T00:00:00+00:00"

    target = ids[3]
    emu.update_response(ds, target)  # same wall time: still strictly later
    assert emu.response_ids(ds) == [*ids, new_id]
    updated = next(r for r in emu.truth()["responses"] if r["id"] == target)
    assert updated["updated_at"] == "2026-11-01T00:00:00.001000+00:00"
    old = next(r for r in before["responses"] if r["id"] == target)
    assert updated["created_at"] == old["created_at"]

    emu.delete_response(ds, ids[0])
    assert emu.response_ids(ds) == [*ids[1:], new_id]
    since = emu.truth(updated_since=datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert [r["id"] for r in since["responses"]] == [target, new_id]
    assert since["forms"] == before["forms"]
    with pytest.raises(KeyError):
        emu.update_response(ds, ids[0])


def test_update_changes_answer_values(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(forms=[FormSpec(responses=30, messy=False, seed=2)])
    (ds,) = emu.data_source_ids
    target = emu.response_ids(ds)[7]

    def answers() -> list[Any]:
        return [a["value"] for a in emu.truth()["answers"] if a["response_id"] == target]

    before = answers()
    for _ in range(3):
        emu.update_response(ds, target)
    assert answers() != before


def test_callback_sees_each_request_and_may_edit_mid_sync(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=30, seed=4)])
    (ds,) = emu.data_source_ids
    ids = emu.response_ids(ds)
    calls: list[tuple[str, int, int, int]] = []

    def on_request(ds_id: str, offset: int, limit: int, number: int) -> None:
        calls.append((ds_id, offset, limit, number))
        if number == 2:
            emu.delete_response(ds_id, ids[0])

    emu.on_data_request(on_request)
    token = access_token(session, emu, ds)
    first = page_ids(get_page(session, emu, ds, token, offset=0, limit=10))
    second = page_ids(get_page(session, emu, ds, token, offset=10, limit=10))
    assert calls == [(ds, 0, 10, 1), (ds, 10, 10, 2)]
    assert first == ids[:10]
    assert second == ids[11:21]  # everything moved one place forward
    assert emu.stats.callback_errors == []


# --------------------------------------------------------------------------- truth


def test_truth_records_have_exactly_the_data_model_columns(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(forms=[FormSpec(responses=150, seed=s) for s in (1, 2, 3)])
    truth = emu.truth()
    assert list(truth) == list(STREAMS)
    for stream, records in truth.items():
        assert records, stream
        keys = [tuple(record[k] for k in PRIMARY_KEYS[stream]) for record in records]
        assert len(set(keys)) == len(keys), f"duplicate primary key in {stream}"
        for record in records:
            assert tuple(record) == COLUMNS[stream]
            assert isinstance(record["data_source_id"], str)
    for record in truth["forms"]:
        assert isinstance(record["question_count"], int)
        assert UTC_ISO.fullmatch(record["created_at"])
    for record in truth["questions"]:
        assert isinstance(record["required"], bool)
        assert isinstance(record["position"], int)
        assert all(set(o) == {"id", "label"} for o in record["options"])
    for record in truth["responses"]:
        for column in ("created_at", "updated_at"):
            assert UTC_ISO.fullmatch(record[column])
        assert record["submitted_at"] is None or UTC_ISO.fullmatch(record["submitted_at"])
        assert record["updated_at"] >= record["created_at"]
        assert all(set(i) == {"id", "key", "url"} for i in record["created_issues"])
        assert isinstance(record["answer_count"], int)
    for record in truth["attachments"]:
        assert isinstance(record["size_bytes"], int)


def test_truth_matches_what_the_api_serves(
    make_emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = make_emulator(forms=[FormSpec(responses=80, seed=6)], rate_limit_per_minute=None)
    (ds,) = emu.data_source_ids
    page = get_page(session, emu, ds, access_token(session, emu, ds)).json()
    truth = emu.truth()
    assert [r["id"] for r in truth["responses"]] == [r["id"] for r in page["responses"]]
    for served, record in zip(page["responses"], truth["responses"], strict=True):
        assert parse_instant(served["createdAt"]).isoformat() == record["created_at"]
        assert parse_instant(served["updatedAt"]).isoformat() == record["updated_at"]
        assert record["answer_count"] == len(served.get("answers") or [])
    assert truth["forms"][0]["question_count"] == len(page["form"]["questions"])


def test_messy_data_has_every_documented_oddity(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(forms=[FormSpec(responses=400, seed=s) for s in (1, 2)])
    truth = emu.truth()
    docs = [r for ds in emu.data_source_ids for r in _served(emu, ds)]
    assert {q["type"] for q in truth["questions"]} == set(QUESTION_TYPES)
    question_ids = {(q["form_id"], q["id"]) for q in truth["questions"]}
    answered = {(a["form_id"], a["question_id"]) for a in truth["answers"]}
    assert answered - question_ids, "answers to a deleted question"
    for form in truth["forms"]:  # its last question was added later: older responses lack it
        last = max(
            (q for q in truth["questions"] if q["form_id"] == form["id"]),
            key=lambda q: q["position"],
        )
        order = [r["id"] for r in truth["responses"] if r["form_id"] == form["id"]]
        positions = [
            order.index(a["response_id"])
            for a in truth["answers"]
            if (a["form_id"], a["question_id"]) == (form["id"], last["id"])
        ]
        assert positions
        assert min(positions) >= len(order) // 3
    assert any(r["respondent_account_id"] is None for r in truth["responses"])
    assert any(r["issue_id"] is None for r in truth["responses"])
    assert any(r["answer_count"] == 0 for r in truth["responses"])
    assert any(len(r["created_issues"]) >= 3 for r in truth["responses"])
    assert any(a["value"] is None for a in truth["answers"])
    values = [json.loads(a["value"]) for a in truth["answers"] if a["value"] is not None]
    assert any(isinstance(v, float) for v in values)
    assert any(isinstance(v, dict) for v in values)
    assert any(len(str(v).encode()) > 2000 for v in values)
    assert any("respondent" not in d for d in docs)
    assert any(d.get("respondent") == {} for d in docs)
    assert any("answers" not in d for d in docs)
    assert any(r["updated_at"] != r["created_at"] for r in truth["responses"])
    stamps = " ".join(d["createdAt"] for d in docs)
    for pattern in (r"\.\d{3}[+-]\d{4}\b", r"\d{2}Z", r"\.\d{3}[+-]\d{2}:\d{2}", r":\d{2}-05:00"):
        assert re.search(pattern, stamps), pattern
    text = json.dumps(docs, ensure_ascii=False)
    for piece in ("x-extra", "東京", "مرحبا", "שלום", "👩\u200d💻", "\\\\", "\\n"):
        assert piece in text, piece


def _served(emu: Emulator, ds: str) -> list[dict[str, Any]]:
    with requests.Session() as session:
        token = access_token(session, emu, ds)
        return list(get_page(session, emu, ds, token).json()["responses"])


def test_plain_data_is_regular(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(forms=[FormSpec(responses=50, answers_per_response=20, messy=False)])
    truth = emu.truth()
    assert len(truth["answers"]) == 50 * 20
    assert all(r["answer_count"] == 20 for r in truth["responses"])
    docs = _served(emu, emu.data_source_ids[0])
    assert all(re.fullmatch(r".*\.\d{3}\+0000", d["createdAt"]) for d in docs)


def test_same_seed_same_data_other_seed_other_data() -> None:
    def truth(seed: int) -> tuple[list[str], dict[str, Any]]:
        emu = Emulator(forms=[FormSpec(responses=50, seed=seed), FormSpec(responses=20, seed=seed)])
        return emu.data_source_ids, emu.truth()

    assert truth(3) == truth(3)
    assert truth(3) != truth(4)


def test_rendered_timestamps_are_the_same_instant() -> None:
    moment = datetime(2026, 1, 15, 14, 23, 45, 123000, tzinfo=timezone.utc)
    for style in STYLES:
        for offset in (0, 120, -300, 330):
            assert parse_instant(render(moment, style, offset)) == moment
    assert render(moment.replace(microsecond=0), "jira") == "2026-01-15T14:23:45.000+0000"
    assert render(moment.replace(microsecond=0), "zulu") == "2026-01-15T14:23:45Z"
    assert render(moment, "colon_millis", 120) == "2026-01-15T16:23:45.123+02:00"
    assert render(moment.replace(microsecond=0), "colon", -300) == "2026-01-15T09:23:45-05:00"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("é", "é"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        (["a", None, "b"], "a, b"),
        ([], ""),
        ({"accountId": "1", "displayName": "Ada"}, "Ada"),
        ({"b": 1, "a": "é"}, '{"a":"é","b":1}'),
    ],
)
def test_value_text(value: Any, text: str | None) -> None:
    assert value_text(value) == text


# --------------------------------------------------------------------------- CLI


def test_cli_writes_config_when_ready_and_stops_on_sigterm(
    tmp_path: Path, session: requests.Session
) -> None:
    config_path = tmp_path / "config.json"
    counts_path = tmp_path / "counts.json"
    command = [
        sys.executable, "-m", "tap_smartforms_emulator", "--port", "0", "--forms", "2",
        "--responses", "7", "--seed", "7", "--write-config", str(config_path),
        "--write-truth", str(counts_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not config_path.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "emulator did not get ready"
            time.sleep(0.02)
        assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
        config = json.loads(config_path.read_text())
        assert set(config) == {"client_id", "client_secret", "oauth_token_url", "data_sources"}
        assert json.loads(counts_path.read_text())["responses"] == 14
        source = config["data_sources"][0]
        token = session.post(
            config["oauth_token_url"],
            json={
                "grant_type": "refresh_token",
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
                "refresh_token": source["refresh_token"],
            },
        ).json()["access_token"]
        reply = session.get(source["url"], headers={"Authorization": f"Bearer {token}"})
        assert len(reply.json()["responses"]) == 7
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert re.search(r"emulator listening on http://127\.0\.0\.1:\d+", stderr)
