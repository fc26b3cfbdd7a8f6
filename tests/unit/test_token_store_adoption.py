"""One default store per host: the stores earlier versions kept per launcher are
found, and a chain one of them holds further along is adopted (issue 11, item 4)."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest

from tap_smartforms.token_store import (
    EntryKey,
    RefreshTokenSource,
    TokenStore,
    TokenStoreError,
    fingerprint,
    legacy_store_paths,
    open_store,
)

KEY = EntryKey("https://auth.example.com/oauth/token", "client", "ds-1")
CONFIGURED = "rt-configured-0000"
START = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(minutes=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def rotate(store: TokenStore, *tokens: str, origin: str = CONFIGURED) -> None:
    with store.locked():
        for token in tokens:
            store.save_rotation(KEY, token, fingerprint(origin))


def stores(tmp_path: Path, clock: Clock) -> tuple[TokenStore, TokenStore]:
    legacy = TokenStore(
        tmp_path / "project" / ".meltano" / "tap-smartforms" / "tokens.json", clock=clock
    )
    default = TokenStore(
        tmp_path / "state" / "tokens.json", clock=clock, legacy_paths=(legacy.path,)
    )
    return default, legacy


def first_pick(default: TokenStore) -> str:
    source = RefreshTokenSource(default, KEY, CONFIGURED)
    with default.locked():
        held, _ = source.pick(None)
    return held.value


def test_the_old_locations_are_the_project_system_folder_and_the_demo_store(tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "meltano.yml").touch()

    paths = legacy_store_paths(
        {"MELTANO_PROJECT_ROOT": "/project", "MELTANO_SYS_DIR_ROOT": "/sys"}, cwd=tmp_path / "here"
    )

    assert paths == (
        Path("/sys/tap-smartforms/tokens.json"),
        Path("/project/.meltano/tap-smartforms/tokens.json"),
        Path("/project/.demo/tokens.json"),
        tmp_path / "here" / ".meltano" / "tap-smartforms" / "tokens.json",
        tmp_path / "here" / ".demo" / "tokens.json",
    )
    assert legacy_store_paths({}, cwd=tmp_path) == ()


def test_an_explicit_token_store_path_looks_at_no_other_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(tmp_path))

    assert open_store(str(tmp_path / "mine.json")).legacy_paths == ()
    assert tmp_path / ".demo" / "tokens.json" in open_store(None).legacy_paths


def test_a_chain_only_the_old_store_holds_is_adopted_with_a_warning(tmp_path, clock, caplog):
    default, legacy = stores(tmp_path, clock)
    rotate(legacy, "rt-old-store-1", "rt-old-store-2")

    with caplog.at_level(logging.WARNING, logger="tap_smartforms.token_store"):
        picked = first_pick(default)

    assert picked == "rt-old-store-2"
    assert default.read(KEY) == legacy_chain_as_adopted(default)
    assert legacy.read(KEY) is None  # no copy left to fall behind
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"from the old token store {legacy.path} into {default.path}" in warning
    assert warning.startswith("data source ds-1: adopted its token chain")
    assert "rt-old-store" not in warning


def legacy_chain_as_adopted(default: TokenStore):
    chain = default.read(KEY)
    assert chain is not None
    assert chain.rotations == 1  # two saves of one chain: the first starts it
    return chain


def test_a_copy_of_the_chain_rotated_further_in_the_old_store_wins(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(default, "rt-default-1")
    rotate(legacy, "rt-legacy-1", "rt-legacy-2", "rt-legacy-3")

    assert first_pick(default) == "rt-legacy-3"
    assert legacy.read(KEY) is None


def test_a_copy_that_fell_behind_in_the_old_store_is_dropped_not_adopted(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(legacy, "rt-legacy-1")
    rotate(default, "rt-default-1", "rt-default-2")

    assert first_pick(default) == "rt-default-2"
    assert legacy.read(KEY) is None


def test_a_reauthorization_in_the_old_store_replaces_the_default_chain(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(default, "rt-default-1")
    rotate(legacy, "rt-legacy-1")  # the same chain, copied before a new consent
    with legacy.locked():
        legacy.save_rotation(
            KEY,
            "rt-new-consent-1",
            fingerprint("rt-new-consent-0"),
        )

    stored_chain = legacy.read(KEY)
    assert stored_chain is not None
    assert stored_chain.descends_from(fingerprint(CONFIGURED))
    source = RefreshTokenSource(default, KEY, None)
    with default.locked():
        held, _ = source.pick(None)

    assert held.value == "rt-new-consent-1"


def test_a_chain_the_helper_starts_is_never_displaced_by_an_old_store(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(legacy, "rt-legacy-1", "rt-legacy-2", "rt-legacy-3")
    with default.locked():
        default.start_chain(KEY, "rt-helper-0")

    source = RefreshTokenSource(default, KEY, None)
    with default.locked():
        held, _ = source.pick(None)

    assert held.value == "rt-helper-0"
    assert legacy.read(KEY) is None


def test_two_unrelated_authorizations_are_refused_in_one_line(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(default, "rt-default-1", origin="rt-consent-a")
    rotate(legacy, "rt-legacy-1", origin="rt-consent-b")

    with pytest.raises(TokenStoreError) as raised:
        first_pick(default)

    message = str(raised.value)
    assert "\n" not in message
    assert str(default.path) in message
    assert f"the old token store {legacy.path}" in message
    assert "data source ds-1" in message
    assert "rt-" not in message.replace("rt-consent", "")
    assert legacy.read(KEY) is not None  # nothing moved


def test_other_data_sources_of_the_old_store_stay_where_they_are(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    other = EntryKey(KEY.token_url, KEY.client_id, "ds-2")
    rotate(legacy, "rt-legacy-1")
    with legacy.locked():
        legacy.save_rotation(other, "rt-other-1", fingerprint("rt-other-0"))

    first_pick(default)

    assert default.read(other) is None
    other_chain = legacy.read(other)
    assert other_chain is not None
    assert other_chain.refresh_token == "rt-other-1"


def test_config_validation_finds_a_chain_that_only_an_old_store_holds(tmp_path, clock):
    default, legacy = stores(tmp_path, clock)
    rotate(legacy, "rt-legacy-1")

    found = default.find(KEY)

    assert found is not None
    assert found.refresh_token == "rt-legacy-1"
