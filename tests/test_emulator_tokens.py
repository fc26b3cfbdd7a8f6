"""The emulator's token endpoint (rotation, reuse window, revocation, authorization
codes) and its per-chain rate limit.

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
    token_request,
)

# --------------------------------------------------------------------------- tokens


def test_refresh_rotates_and_the_old_token_has_a_reuse_window(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = emulator(clock=clock, reuse_window=0.2)
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = emulator(clock=clock, reuse_window=0.2)
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


def test_revoke_chain(emulator: EmulatorFactory, session: requests.Session) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    pair = refresh(session, emu, emu.refresh_token(ds)).json()
    emu.revoke_chain(ds)
    assert refresh(session, emu, pair["refresh_token"]).json()["error"] == "invalid_grant"
    assert get_page(session, emu, ds, pair["access_token"]).status_code == 401
    assert emu.stats.revoked_chain_data_sources == [ds]


def test_wrong_client_and_unknown_tokens(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator()
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator()
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = emulator(clock=clock)
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
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(omit_refresh_token_in_reply=True)
    (ds,) = emu.data_source_ids
    for _ in range(3):
        reply = refresh(session, emu, emu.refresh_token(ds))
        assert reply.status_code == 200
        assert "refresh_token" not in reply.json()
    assert emu.stats.stale_refresh_uses == 0


def test_lost_token_reply_then_retry_inside_the_window(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator()
    (ds,) = emu.data_source_ids
    emu.queue_token_fault("lost_reply")
    with pytest.raises(requests.ConnectionError):
        refresh(session, emu, emu.refresh_token(ds))
    retry = refresh(session, emu, emu.refresh_token(ds))
    assert retry.status_code == 200
    assert emu.stats.stale_refresh_uses == 1


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_is_a_sliding_window_per_chain(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    clock = ManualClock()
    emu = emulator(
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
