"""One token store per host, whatever launches the tap (issue 11, item 4): a run by
hand, `meltano config test`, `meltano run` in the default environment and
`meltano invoke` in no environment, in turn on the same data sources, share one chain each and
never send a rotated-away refresh token."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tap_smartforms.token_store import EntryKey, TokenStore
from tap_smartforms_emulator import FormSpec
from tests.conftest import (
    REPO_ROOT,
    TAP_TIMEOUT_SECONDS,
    MeltanoProject,
    assert_no_secrets,
    config_secrets,
    plugin_env,
)


@pytest.mark.slow  # installs Meltano's plugins (once per session) and runs it three times
def test_every_launch_uses_the_one_default_store(meltano: MeltanoProject, emulator, tmp_path):
    emu = emulator([FormSpec(responses=6, seed=51), FormSpec(responses=7, seed=52)])
    config = emu.tap_config()  # no token_store_path: the default store
    secrets = config_secrets(config)
    state_home = tmp_path / "state"
    shared = {"XDG_STATE_HOME": str(state_home)}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    by_hand = subprocess.run(
        [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_"))},
            **shared,
        },
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=False,
    )
    assert_no_secrets([by_hand.stdout, by_hand.stderr], secrets)
    meltano_env = {
        **plugin_env("tap-smartforms", config),
        **shared,
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
    }
    (tmp_path / "jsonl").mkdir()
    first_data_source_only = {"data_sources": config["data_sources"][:1]}
    launches = {
        "by hand": by_hand,
        # One data source only: `meltano config test` ends the tap with SIGTERM at its
        # first record, and a second data source's refresh in flight then would be cut
        # after the server rotated its token but before the store saved it (the exit
        # paths are another change's business, branch tokens-exit).
        "meltano config test": meltano.run(
            "config", "test", "tap-smartforms",
            env={**meltano_env, **plugin_env("tap-smartforms", first_data_source_only)},
            secrets=secrets,
        ),
        "meltano run (demo environment)": meltano.run(
            "run", "--state-id-suffix", "one-store-demo", "tap-smartforms", "target-jsonl",
            env=meltano_env, secrets=secrets,
        ),
        # `meltano run` needs an environment; invoke runs the tap in none at all.
        "meltano invoke (no environment)": meltano.run(
            "--no-environment", "invoke", "tap-smartforms", env=meltano_env, secrets=secrets
        ),
    }  # fmt: skip

    for name, completed in launches.items():
        assert completed.returncode == 0, f"{name}: {completed.stderr[-3000:]}"
        assert "invalid_grant" not in completed.stderr, name
    stats = emu.stats
    assert stats.invalid_grants == 0
    assert stats.revoked_chains == 0
    assert stats.stale_refresh_uses == 0
    # Each launch refreshed each of its data sources once (config test had one).
    assert stats.refreshes == 2 * len(launches) - 1
    store = TokenStore(state_home / "tap-smartforms" / "tokens.json")
    for ds in emu.data_source_ids:
        chain = store.read(EntryKey(emu.token_url, emu.client_id, ds))
        assert chain is not None
        # Saved by every launch that refreshed it: the first save starts the count.
        assert chain.rotations >= len(launches) - 2
    # No launcher kept a store of its own.
    assert not (meltano.sys_dir / "tap-smartforms" / "tokens.json").exists()
    for other in (REPO_ROOT / ".meltano" / "tap-smartforms", REPO_ROOT / ".demo"):
        path = other / "tokens.json"
        assert not path.exists() or emu.token_url not in path.read_text()
