"""The token store on its own: where it lives, what it keeps, who wins, and safety."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import stat
import threading
from pathlib import Path

import pytest

from tap_smartforms import token_store
from tap_smartforms.token_store import (
    EntryKey,
    HeldToken,
    RefreshTokenSource,
    StoredChain,
    TokenStore,
    TokenStoreError,
    default_store_path,
    fingerprint,
)

KEY = EntryKey("https://auth.example.com/oauth/token", "client", "ds-1")
CONFIGURED = "rt-configured-0000"
NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def store_at(tmp_path: Path, now: datetime.datetime = NOW) -> TokenStore:
    return TokenStore(tmp_path / "state" / "tokens.json", clock=lambda: now)


def test_meltano_runs_keep_the_store_where_every_other_launch_does():
    meltano = {
        "MELTANO_PROJECT_ROOT": "/project",
        "MELTANO_SYS_DIR_ROOT": "/project/.sys",
        "MELTANO_ENVIRONMENT": "demo",
        "XDG_STATE_HOME": "/state",
    }

    assert default_store_path(meltano, platform="linux") == default_store_path(
        {"XDG_STATE_HOME": "/state"}, platform="linux"
    )
    assert default_store_path(meltano, platform="linux") == Path(
        "/state/tap-smartforms/tokens.json"
    )


def test_other_runs_keep_it_in_the_user_state_folder():
    assert default_store_path({"XDG_STATE_HOME": "/state"}, platform="linux") == Path(
        "/state/tap-smartforms/tokens.json"
    )
    assert default_store_path({}, platform="linux", home=Path("/home/u")) == Path(
        "/home/u/.local/state/tap-smartforms/tokens.json"
    )


def test_a_saved_chain_is_private_and_holds_a_fingerprint_not_the_configured_token(tmp_path):
    store = store_at(tmp_path)

    with store.locked():
        store.save_rotation(KEY, "rt-rotated-1111", fingerprint(CONFIGURED))

    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    text = store.path.read_text()
    assert CONFIGURED not in text
    assert fingerprint(CONFIGURED) in text
    assert store.read(KEY) == StoredChain("rt-rotated-1111", fingerprint(CONFIGURED), NOW, NOW)


def test_entries_are_kept_apart_by_token_url_client_and_data_source(tmp_path):
    store = store_at(tmp_path)
    others = [
        EntryKey("https://other/token", "client", "ds-1"),
        EntryKey(KEY.token_url, "other-client", "ds-1"),
        EntryKey(KEY.token_url, "client", "ds-2"),
    ]

    with store.locked():
        for number, key in enumerate([KEY, *others]):
            store.save_rotation(key, f"rt-{number}", fingerprint(f"origin-{number}"))

    assert [store.read(key).refresh_token for key in [KEY, *others]] == [
        "rt-0",
        "rt-1",
        "rt-2",
        "rt-3",
    ]


def test_a_failed_write_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    store = store_at(tmp_path)
    with store.locked():
        store.save_rotation(KEY, "rt-old", fingerprint(CONFIGURED))

    def refuse(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(token_store.os, "replace", refuse)
    with pytest.raises(TokenStoreError) as raised, store.locked():
        store.save_rotation(KEY, "rt-new", fingerprint(CONFIGURED))

    assert str(store.path) in str(raised.value)
    assert "No space left on device" in str(raised.value)
    assert store.read(KEY).refresh_token == "rt-old"
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_file_that_is_not_a_store_is_reported_not_overwritten(tmp_path):
    store = store_at(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("not json")

    with pytest.raises(TokenStoreError, match="is not a token store file"):
        store.read(KEY)
    assert store.path.read_text() == "not json"


def test_the_stored_chain_wins_while_it_descends_from_the_configured_token(tmp_path):
    store = store_at(tmp_path)
    with store.locked():
        store.save_rotation(KEY, "rt-rotated", fingerprint(CONFIGURED))

    held, note = RefreshTokenSource(store, KEY, CONFIGURED).pick(None)

    assert held == HeldToken("rt-rotated", fingerprint(CONFIGURED), "store")
    assert note is not None
    assert "using the stored refresh token (rotated 2026-06-01 00:00 UTC" in note
    assert "rt-rotated" not in note


def test_a_new_configured_token_wins_and_its_first_rotation_restarts_the_entry(tmp_path):
    store = store_at(tmp_path)
    with store.locked():
        store.save_rotation(KEY, "rt-old-chain", fingerprint("rt-old-origin"))
    source = RefreshTokenSource(store, KEY, CONFIGURED)

    held, note = source.pick(None)
    with store.locked():
        source.keep(held, "rt-new-chain")

    assert held == HeldToken(CONFIGURED, fingerprint(CONFIGURED), "config")
    assert note is not None
    assert "from the config" in note
    assert store.read(KEY).refresh_token == "rt-new-chain"
    assert store.read(KEY).origin == fingerprint(CONFIGURED)


def test_a_token_another_run_rotated_replaces_the_one_held(tmp_path):
    store = store_at(tmp_path)
    source = RefreshTokenSource(store, KEY, CONFIGURED)
    held, _ = source.pick(None)
    with store.locked():  # another run, same chain
        store.save_rotation(KEY, "rt-theirs", fingerprint(CONFIGURED))

    newer, note = source.pick(held)

    assert newer.value == "rt-theirs"
    assert note is not None
    assert "another run rotated" in note


def test_no_token_anywhere_is_an_error_naming_the_store(tmp_path):
    store = store_at(tmp_path)

    with pytest.raises(TokenStoreError, match="tap-smartforms-auth") as raised:
        RefreshTokenSource(store, KEY, None).pick(None)
    assert str(store.path) in str(raised.value)


@pytest.mark.parametrize(
    ("first_authorized_days_ago", "last_rotated_days_ago", "expected"),
    [
        (360, 0, "its authorization ends on 2026-06-06"),
        (100, 85, "its refresh token expires on 2026-06-06"),
        (100, 10, None),
    ],
)
def test_an_expiry_within_the_horizon_is_announced_with_its_date(
    first_authorized_days_ago: int, last_rotated_days_ago: int, expected: str | None
):
    chain = StoredChain(
        "rt",
        "origin",
        NOW - datetime.timedelta(days=first_authorized_days_ago),
        NOW - datetime.timedelta(days=last_rotated_days_ago),
    )

    warning = chain.expiry_warning(NOW, horizon_days=10)

    if expected is None:
        assert warning is None
    else:
        assert warning is not None
        assert expected in warning


def increment_stored_counter(path: Path, times: int) -> None:
    """Read the counter kept as the refresh token, then store it plus one, locked."""
    store = TokenStore(path)
    for _ in range(times):
        with store.locked():
            current = int(store.read(KEY).refresh_token)
            store.save_rotation(KEY, str(current + 1), fingerprint(CONFIGURED))


def test_threads_take_turns_holding_the_store(tmp_path):
    # Any overlap between two holders would lose an increment.
    store = store_at(tmp_path)
    with store.locked():
        store.save_rotation(KEY, "0", fingerprint(CONFIGURED))

    threads = [
        threading.Thread(target=increment_stored_counter, args=(store.path, 20)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.read(KEY).refresh_token == "80"


def test_processes_take_turns_holding_the_store(tmp_path):
    store = store_at(tmp_path)
    with store.locked():
        store.save_rotation(KEY, "0", fingerprint(CONFIGURED))
    spawn = multiprocessing.get_context("spawn")

    children = [
        spawn.Process(target=increment_stored_counter, args=(store.path, 20)) for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)

    assert [child.exitcode for child in children] == [0, 0, 0]
    assert json.loads(store.path.read_text())["entries"][0]["refresh_token"] == "60"
