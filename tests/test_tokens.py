"""Rotating refresh tokens against the emulator's token endpoint (docs/api-contract.md §2):
kept in the token store, shared safely by overlapping runs, failing clearly.

Every run here is the real tap process; the emulator counts stale refresh-token
uses (a rotated-away token sent again) and revoked chains, which a tap that loses
or races its tokens cannot avoid.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms.token_store import EntryKey, TokenStore, fingerprint
from tap_smartforms_emulator import FormSpec
from tests.conftest import TAP_TIMEOUT_SECONDS, TapRun, assert_no_secrets, config_secrets


def start_tap(config: dict[str, Any], workdir: Path, name: str, **popen: Any) -> subprocess.Popen:
    config_path = workdir / f"config-{name}.json"
    config_path.write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, "-m", "tap_smartforms", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finish(process: subprocess.Popen, config: dict[str, Any]) -> TapRun:
    stdout, stderr = process.communicate(timeout=TAP_TIMEOUT_SECONDS)
    assert_no_secrets([stdout, stderr], config_secrets(config))
    messages = [json.loads(line) for line in stdout.splitlines() if line]
    return TapRun(process.returncode, stdout, stderr, messages)


def response_ids(run: TapRun) -> set[str]:
    return {record["id"] for record in run.records("responses")}


def truth_ids(emu) -> set[str]:
    return {record["id"] for record in emu.truth()["responses"]}


def stored_chain(store_path: Path, emu, data_source_id: str):
    key = EntryKey(emu.token_url, emu.client_id, data_source_id)
    return TokenStore(store_path).read(key)


@pytest.mark.slow  # outlasting three 2 s token lifetimes takes about 10 s
def test_a_sync_outlasting_many_access_tokens_completes(emulator, run_tap):
    # 2 s tokens; 24 pages at 0.3 s each take about three lifetimes.
    emu = emulator([FormSpec(responses=120, seed=21)], access_token_ttl=2.0, latency=0.3)

    run = run_tap(emu.tap_config(page_size=5))

    assert run.returncode == 0, run.stderr
    assert response_ids(run) == truth_ids(emu)
    stats = emu.stats
    assert stats.refreshes >= 3
    assert stats.status_counts.get(401, 0) == 0  # refreshed ahead of expiry, not after
    assert stats.stale_refresh_uses == 0
    assert stats.revoked_chains == 0


def test_a_second_run_continues_from_the_rotated_token(emulator, run_tap, tmp_path):
    emu = emulator([FormSpec(responses=20, seed=22)])
    config = emu.tap_config()
    (ds,) = emu.data_source_ids

    first = run_tap(config)
    after_first = stored_chain(tmp_path / "tokens.json", emu, ds)
    second = run_tap(config)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert response_ids(first) == response_ids(second) == truth_ids(emu)
    assert "using the refresh token from the config" in first.stderr
    assert "using the stored refresh token (rotated " in second.stderr
    assert after_first is not None
    assert after_first.origin == fingerprint(config["data_sources"][0]["refresh_token"])
    stats = emu.stats
    assert stats.refreshes == 2
    assert stats.stale_refresh_uses == 0  # the config's token was never sent twice
    assert stats.revoked_chains == 0


def test_two_runs_started_at_once_share_the_chain(emulator, tmp_path):
    emu = emulator([FormSpec(responses=40, seed=23)], latency=0.05)
    config = emu.tap_config(page_size=10, token_store_path=str(tmp_path / "tokens.json"))

    processes = [start_tap(config, tmp_path, name) for name in ("a", "b")]
    runs = [finish(process, config) for process in processes]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert response_ids(run) == truth_ids(emu)
    stats = emu.stats
    assert stats.refreshes == 2
    assert stats.stale_refresh_uses == 0
    assert stats.revoked_chains == 0


def test_a_short_run_inside_a_long_one_rotates_safely(emulator, tmp_path):
    # The long run's access token is made to expire (the emulator's clock jumps an
    # hour) while the short run, started and finished in between, rotates the
    # chain: the long run must continue from the short run's token.
    skipped = [0.0]
    emu = emulator([FormSpec(responses=60, seed=24)], clock=lambda: time.monotonic() + skipped[0])
    config = emu.tap_config(page_size=10, token_store_path=str(tmp_path / "tokens.json"))
    short_config = {**config, "page_size": 500}
    short_runs: list[TapRun] = []
    started = threading.Event()

    def run_short_inside(ds_id: str, offset: int, limit: int, request_number: int) -> None:
        # The long run's third page (the short run asks for 500 at a time).
        if limit != 500 and request_number >= 3 and not started.is_set():
            started.set()
            short_runs.append(finish(start_tap(short_config, tmp_path, "short"), short_config))
            skipped[0] += 3600.0

    emu.on_data_request(run_short_inside)
    long_run = finish(start_tap(config, tmp_path, "long"), config)

    assert long_run.returncode == 0, long_run.stderr
    assert short_runs, "the short run never started"
    assert short_runs[0].returncode == 0, short_runs[0].stderr
    assert response_ids(long_run) == response_ids(short_runs[0]) == truth_ids(emu)
    assert "another run rotated the refresh token" in long_run.stderr
    stats = emu.stats
    assert stats.refreshes == 3  # long, short, long again
    assert stats.stale_refresh_uses == 0
    assert stats.revoked_chains == 0
    assert stats.callback_errors == []


def test_the_store_file_and_folder_are_private(emulator, run_tap, tmp_path):
    emu = emulator([FormSpec(responses=5, seed=25)])
    store = tmp_path / "new-folder" / "tokens.json"

    run = run_tap(emu.tap_config(token_store_path=str(store)))

    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert [p.name for p in store.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_rotated_token_that_cannot_be_saved_stops_that_data_source(emulator, tmp_path):
    # Directory permissions do not stop root, so the store's write is made to fail
    # with a file size limit instead: the first rotation cannot be saved.
    emu = emulator([FormSpec(responses=5, seed=26)])
    store = tmp_path / "tokens.json"
    config = emu.tap_config(token_store_path=str(store))

    def small_files_only() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    run = finish(start_tap(config, tmp_path, "a", preexec_fn=small_files_only), config)

    assert run.returncode == 1
    (ds,) = emu.data_source_ids
    errors = "\n".join(run.error_lines)
    assert f"data source {ds}: the rotated refresh token could not be saved" in errors
    assert str(store) in errors
    assert run.records("responses") == []
    assert "Traceback" not in run.stderr


def test_a_revoked_chain_fails_alone_and_clearly(emulator, run_tap):
    emu = emulator([FormSpec(responses=10, seed=27), FormSpec(responses=12, seed=28)])
    revoked, healthy = emu.data_source_ids
    config = emu.tap_config()
    assert run_tap(config).returncode == 0  # both chains now live in the store
    emu.revoke_chain(revoked)

    run = run_tap(config)

    assert run.returncode == 1
    errors = "\n".join(run.error_lines)
    assert f"data source {revoked}: the refresh token was refused (invalid_grant" in errors
    assert "repeat the Data Source authorization steps" in errors
    assert {r["id"] for r in run.records("responses")} == {
        r["id"] for r in emu.truth()["responses"] if r["data_source_id"] == healthy
    }
    assert "Traceback" not in run.stderr


def test_a_data_source_without_a_refresh_token_anywhere_fails_alone(emulator, run_tap):
    emu = emulator([FormSpec(responses=10, seed=31), FormSpec(responses=12, seed=32)])
    tokenless, healthy = emu.data_source_ids
    config = emu.tap_config()
    del config["data_sources"][0]["refresh_token"]

    run = run_tap(config)

    assert run.returncode == 1
    (line,) = [line for line in run.error_lines if f"data source {tokenless}:" in line]
    assert "holds no refresh token for it" in line
    assert "tap-smartforms-auth" in line
    assert {r["id"] for r in run.records("responses")} == {
        r["id"] for r in emu.truth()["responses"] if r["data_source_id"] == healthy
    }
    assert "Traceback" not in run.stderr


def test_a_wrong_client_secret_and_a_disabled_rest_api_each_fail_alone(emulator, run_tap):
    emu = emulator([FormSpec(responses=5, seed=30 + n) for n in range(3)])
    wrong_client, no_rest_api, healthy = emu.data_source_ids
    config = emu.tap_config()
    config["data_sources"][0]["client_secret"] = "not-the-client-secret"
    emu.set_data_source_failure(no_rest_api, "scope_mismatch")

    run = run_tap(config)

    assert run.returncode == 1
    errors = "\n".join(run.error_lines)
    assert f"data source {wrong_client}: the token endpoint refused the OAuth client " in errors
    assert "check client_id and client_secret" in errors
    assert f"data source {no_rest_api}: the Atlassian gateway refused the token" in errors
    assert "Connected apps" in errors
    assert {r["data_source_id"] for r in run.records("responses")} == {healthy}


def test_a_chain_near_its_365_days_is_announced_with_its_end_date(emulator, run_tap, tmp_path):
    emu = emulator([FormSpec(responses=5, seed=33)])
    (ds,) = emu.data_source_ids
    config = emu.tap_config()
    configured = config["data_sources"][0]["refresh_token"]
    now = datetime.datetime.now(datetime.timezone.utc)
    first_consent = now - datetime.timedelta(days=360)
    key = EntryKey(emu.token_url, emu.client_id, ds)
    # The chain as the store would hold it had it been authorized 360 days ago.
    for when in (first_consent, now):
        store = TokenStore(tmp_path / "tokens.json", clock=lambda when=when: when)
        with store.locked():
            store.save_rotation(key, configured, fingerprint(configured))

    run = run_tap(config)

    assert run.returncode == 0, run.stderr
    ends = (first_consent + datetime.timedelta(days=365)).date().isoformat()
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line]
    assert any(
        f"data source {ds}: its authorization ends on {ends}" in line for line in warnings
    ), warnings
    quiet = run_tap({**config, "token_expiry_warning_days": 3})
    # A quiet run that synced, not one that stopped before it could warn.
    assert quiet.returncode == 0, quiet.stderr
    assert response_ids(quiet) == truth_ids(emu)
    assert "its authorization ends on" not in quiet.stderr


@pytest.mark.parametrize("command", [["tap-smartforms-auth"], ["tap-smartforms", "auth"]])
def test_the_helper_stores_tokens_that_the_next_run_uses(
    emulator, run_tap, tmp_path, command: list[str]
):
    emu = emulator([FormSpec(responses=8, seed=29)])
    (ds,) = emu.data_source_ids
    code = emu.authorization_code(ds)
    store = tmp_path / "tokens.json"
    ready_made_command = (
        f"curl --request POST \\\n  --url '{emu.token_url}' \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        "  --data '"
        + json.dumps(
            {
                "grant_type": "authorization_code",
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "code": code,
                "redirect_uri": "https://example.invalid/callback",
            }
        )
        + "'\n"
    )

    helper = subprocess.run(
        [
            str(Path(sys.executable).with_name(command[0])),
            *command[1:],
            "--data-source-url",
            emu.data_source_url(ds),
            "--token-store-path",
            str(store),
        ],
        input=ready_made_command,
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    config = emu.tap_config(token_store_path=str(store))
    del config["data_sources"][0]["refresh_token"]  # the store has it now
    run = run_tap(config)

    assert helper.returncode == 0, helper.stderr
    assert_no_secrets([helper.stdout, helper.stderr], [emu.client_secret, code])
    assert "TAP_SMARTFORMS_CLIENT_SECRET" in helper.stdout
    assert run.returncode == 0, run.stderr
    assert "using the stored refresh token" in run.stderr
    assert response_ids(run) == truth_ids(emu)
    stats = emu.stats
    assert stats.code_exchanges == 1
    assert stats.refreshes == 1
    assert stats.stale_refresh_uses == 0


def test_a_token_endpoint_redirect_is_not_followed_and_says_which_setting(emulator, run_tap):
    # The emulator's 307 points back at its own token endpoint: a tap that followed it
    # would send its secrets a second time, and that second request would be granted.
    emu = emulator([FormSpec(responses=5, seed=31)])
    (ds,) = emu.data_source_ids
    emu.queue_token_fault("redirect")

    run = run_tap(emu.tap_config())

    assert run.returncode == 1
    (error,) = [line for line in run.error_lines if f"data source {ds}:" in line]
    assert "answered HTTP 307, a redirect; it was not followed" in error
    assert "set oauth_token_url" in error
    assert "Traceback" not in run.stderr
    assert emu.stats.token_requests == 1
    assert emu.stats.token_status_counts == {307: 1}


def test_the_helper_does_not_follow_the_emulator_redirect(emulator, tmp_path):
    emu = emulator([FormSpec(responses=1, seed=32)])
    (ds,) = emu.data_source_ids
    emu.queue_token_fault("redirect")
    code = emu.authorization_code(ds)

    helper = subprocess.run(
        [
            *(sys.executable, "-m", "tap_smartforms", "auth", "--data-source-id", ds),
            *("--client-id", emu.client_id, "--code", code, "--token-url", emu.token_url),
            *("--client-secret", emu.client_secret),
            *("--token-store-path", str(tmp_path / "tokens.json")),
        ],
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=False,
    )

    assert helper.returncode == 1
    assert helper.stderr.count("\n") == 1
    assert "answered HTTP 307, a redirect" in helper.stderr
    assert_no_secrets([helper.stdout, helper.stderr], [emu.client_secret, code])
    assert emu.stats.token_requests == 1
    assert emu.stats.code_exchanges == 0
    assert not (tmp_path / "tokens.json").exists()


def test_a_chain_in_an_old_versions_meltano_store_is_adopted_by_the_default_store(
    emulator, tmp_path
):
    # The store an earlier version kept in the Meltano project, and a run after the
    # upgrade, launched by Meltano, with no token_store_path.
    emu = emulator([FormSpec(responses=6, seed=33)])
    (ds,) = emu.data_source_ids
    project = tmp_path / "project"
    old_store = project / ".meltano" / "tap-smartforms" / "tokens.json"
    default_store = tmp_path / "state" / "tap-smartforms" / "tokens.json"
    config = emu.tap_config()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_"))},
        "MELTANO_PROJECT_ROOT": str(project),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    old_run = finish(
        start_tap({**config, "token_store_path": str(old_store)}, tmp_path, "old", env=env),
        config,
    )
    assert old_run.returncode == 0, old_run.stderr

    run = finish(start_tap(config, tmp_path, "upgraded", env=env), config)

    assert run.returncode == 0, run.stderr
    (adopted_line,) = [line for line in run.stderr.splitlines() if "adopted" in line]
    assert "WARNING  | tap_smartforms.token_store" in adopted_line
    assert f"data source {ds}: adopted its token chain" in adopted_line
    assert f"from the old token store {old_store} into {default_store}" in adopted_line
    assert stored_chain(old_store, emu, ds) is None
    adopted = stored_chain(default_store, emu, ds)
    assert adopted is not None
    assert adopted.rotations == 1
    stats = emu.stats
    assert stats.stale_refresh_uses == 0
    assert stats.invalid_grants == 0
    assert stats.revoked_chains == 0
