"""HTTP helpers for the emulator's own tests: token requests and data pages, as a
client of the API would send them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tap_smartforms_emulator import Emulator

REPO = Path(__file__).resolve().parent.parent
UTC_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00")
# What the `emulator` fixture (tests/conftest.py) yields.
EmulatorFactory = Callable[..., Emulator]


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
