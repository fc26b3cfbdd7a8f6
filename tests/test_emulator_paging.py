"""The emulator's paging: limit and offset over the API's order, and the
``updatedFrom`` filter applied before paging.

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import http.client
import json
from datetime import datetime

import requests

from tap_smartforms_emulator import (
    FormSpec,
)
from tap_smartforms_emulator.timefmt import STYLES, render
from tests.emulator_http import (
    EmulatorFactory,
    access_token,
    get_page,
    page_ids,
)

# --------------------------------------------------------------------------- paging


def test_pages_walk_every_response_once_in_api_order(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=120, seed=3)])
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=510, messy=False, seed=1)])
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    first = get_page(session, emu, ds, token).json()
    assert (len(first["responses"]), first["limit"], first["offset"]) == (500, 500, 0)
    assert page_ids(get_page(session, emu, ds, token, offset=600)) == []


def test_api_order_is_created_at_then_id(emulator: EmulatorFactory) -> None:
    emu = emulator(forms=[FormSpec(responses=400, seed=5)])
    records = emu.truth()["responses"]
    keys = [(datetime.fromisoformat(r["created_at"]), r["id"]) for r in records]
    assert keys == sorted(keys)
    created = [k[0] for k in keys]
    assert len(set(created)) < len(created), "messy data should contain createdAt ties"


def test_omit_paging_fields(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator(omit_paging_fields=True)
    (ds,) = emu.data_source_ids
    page = get_page(session, emu, ds, access_token(session, emu, ds), limit=10).json()
    assert list(page) == ["form", "responses"]
    assert len(page["responses"]) == 10


def test_connections_stay_open_between_requests(emulator: EmulatorFactory) -> None:
    emu = emulator()
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=200, seed=8)])
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(ignore_updated_from=True)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    reply = get_page(session, emu, ds, token, updatedFrom="2030-01-01T00:00:00Z")
    assert reply.json()["total"] == 60
