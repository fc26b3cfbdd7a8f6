"""The token store's folder and lock file stay private whatever the umask, and a
folder or lock file others could tamper with is fixed or refused (issue 11, item 6).

The tests run as root, whom modes do not stop: so they check the modes the store
leaves and the ownership it refuses (root can hand a file to another uid), never
whether another user is kept out.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_smartforms.token_store import EntryKey, TokenStore, TokenStoreError

KEY = EntryKey("https://auth.example.com/oauth/token", "client", "ds-1")
ANOTHER_USER = 4242


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def save(store: TokenStore) -> None:
    with store.locked():
        store.start_chain(KEY, "rt-hardening-0001")


@pytest.fixture
def no_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_every_folder_the_store_creates_is_0700_even_under_umask_000(tmp_path, no_umask):
    store = TokenStore(tmp_path / "a" / "b" / "c" / "tokens.json")

    save(store)

    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert mode(folder) == 0o700, folder
    assert mode(store.path) == 0o600
    assert mode(store.lock_path) == 0o600


def test_a_group_and_world_writable_store_folder_is_fixed_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "store"
    folder.mkdir()
    folder.chmod(0o777)
    store = TokenStore(folder / "tokens.json")

    with caplog.at_level(logging.WARNING, logger="tap_smartforms.token_store"):
        save(store)

    assert mode(folder) == 0o755
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        f"the token store's folder {folder} was open to other users (mode 0777); made it 0755"
    )


def test_a_lock_file_open_to_others_is_made_0600_with_a_warning(tmp_path, caplog):
    store = TokenStore(tmp_path / "tokens.json")
    store.lock_path.touch()
    store.lock_path.chmod(0o666)

    with caplog.at_level(logging.WARNING, logger="tap_smartforms.token_store"):
        save(store)

    assert mode(store.lock_path) == 0o600
    assert any(
        f"lock file {store.lock_path} was open to other users (mode 0666)" in r.getMessage()
        for r in caplog.records
    )


def test_a_private_store_gives_no_warning(tmp_path, caplog):
    store = TokenStore(tmp_path / "private" / "tokens.json")

    with caplog.at_level(logging.WARNING, logger="tap_smartforms.token_store"):
        save(store)
        save(store)

    assert caplog.records == []


def test_a_store_folder_owned_by_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, ANOTHER_USER, -1)
    store = TokenStore(folder / "tokens.json")

    with pytest.raises(TokenStoreError, match="belongs to another user") as raised:
        save(store)

    assert f"uid {ANOTHER_USER}" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not store.path.exists()


def test_a_lock_file_owned_by_another_user_is_refused(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.lock_path.touch(mode=0o600)
    os.chown(store.lock_path, ANOTHER_USER, -1)

    with pytest.raises(TokenStoreError, match=f"{store.lock_path}, which belongs to another"):
        save(store)

    assert not store.path.exists()


def test_a_shared_sticky_folder_like_tmp_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    store = TokenStore(shared / "tokens.json")

    with pytest.raises(TokenStoreError, match="a folder every user can write to"):
        save(store)

    assert mode(shared) == 0o1777  # not "fixed": it is meant to be shared


def test_a_symbolic_link_planted_as_the_lock_file_is_refused_and_not_followed(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    target = tmp_path / "elsewhere"
    store.lock_path.symlink_to(target)

    with pytest.raises(TokenStoreError) as raised:
        save(store)

    message = str(raised.value)
    assert "has a symbolic link as its lock file" in message
    assert "\n" not in message
    assert not target.exists()
    assert not store.path.exists()
