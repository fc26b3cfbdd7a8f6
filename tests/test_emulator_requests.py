"""Requests the emulator refuses, as the API does: bad parameters, unknown data
sources, wrong or expired tokens, bodies over the limit, unknown paths.

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import pytest
import requests

from tap_smartforms_emulator import (
    FormSpec,
    ManualClock,
)
from tests.emulator_http import (
    EmulatorFactory,
    access_token,
    get_page,
    refresh,
)

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
    emulator: EmulatorFactory, session: requests.Session, params: dict[str, str]
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, ds, access_token(session, emu, ds), **params)
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"
    assert reply.json()["message"]


@pytest.mark.parametrize("query", ["", "?dataSourceId=", "?limit=5"])
def test_missing_data_source_id_is_400(
    emulator: EmulatorFactory, session: requests.Session, query: str
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    url = emu.data_source_url(ds).partition("?")[0] + query
    reply = session.get(url, headers={"Authorization": f"Bearer {access_token(session, emu, ds)}"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "bad_request"


def test_unknown_data_source_is_404(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, "ds-nope", access_token(session, emu, ds))
    assert reply.status_code == 404
    assert reply.json() == {"error": "not_found", "message": "Data source ds-nope not found"}


def test_token_of_another_data_source_is_403(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=5, seed=1), FormSpec(responses=5, seed=1)])
    first, second = emu.data_source_ids
    reply = get_page(session, emu, second, access_token(session, emu, first))
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden"


@pytest.mark.parametrize("token", [None, "at-unknown"])
def test_missing_or_unknown_access_token_is_401(
    emulator: EmulatorFactory, session: requests.Session, token: str | None
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 401
    assert reply.json() == {"code": 401, "message": "Unauthorized"}


def test_access_token_expires_after_its_ttl(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = emulator(clock=clock, access_token_ttl=0.5)
    (ds,) = emu.data_source_ids
    reply = refresh(session, emu, emu.refresh_token(ds))
    assert reply.json()["expires_in"] == 1
    token = reply.json()["access_token"]
    assert get_page(session, emu, ds, token, limit=1).status_code == 200
    clock.advance(0.5)
    assert get_page(session, emu, ds, token, limit=1).status_code == 401


def test_body_over_max_is_413(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator(max_body_bytes=30_000)
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    reply = get_page(session, emu, ds, token)
    assert reply.status_code == 413
    assert reply.json()["error"] == "payload_too_large"
    assert get_page(session, emu, ds, token, limit=1).status_code == 200


def test_unknown_paths_and_methods(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator()
    assert session.get(f"{emu.base_url}/rest/api/3/myself").status_code == 404
    assert session.get(emu.token_url).status_code == 405
    (ds,) = emu.data_source_ids
    assert session.post(emu.data_source_url(ds)).status_code == 405
