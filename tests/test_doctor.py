"""`tap-smartforms doctor` against the emulator: the real command, a subprocess, one
report per run; each broken assumption the emulator can play shows as its check's
WARN or FAIL. (The unit tests, tests/unit/test_doctor.py, cover each check alone,
and an ignored offset and a silent page cap.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tap_smartforms import doctor
from tap_smartforms.token_store import EntryKey, TokenStore
from tap_smartforms_emulator import FormSpec
from tap_smartforms_emulator import drift as emulated_drift
from tests.conftest import DOCTOR_LINE, REPO_ROOT, config_secrets, plugin_env

CHECKS = [
    "token", "data", "limit", "offset", "updatedFrom", "total", "page size", "sort order",
    "timestamps", "API drift",
]  # fmt: skip
MAX_DATA_REQUESTS = doctor.MAX_DATA_REQUESTS


def plain_forms() -> list[FormSpec]:
    """Regular data: no unmapped fields, one timestamp style, so every check is ok."""
    return [
        FormSpec(responses=40, seed=31, messy=False),
        FormSpec(responses=7, seed=32, messy=False),
    ]


def test_a_healthy_api_passes_every_check_with_few_requests(emulator, run_doctor):
    emu = emulator(plain_forms())

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("tap-smartforms doctor\n  tap-smartforms ")
    assert run.stdout.rstrip().endswith("result: every check ok")
    for data_source_id in emu.data_source_ids:
        checks = run.checks(data_source_id)
        assert list(checks) == CHECKS
        assert {status for status, _ in checks.values()} == {"ok"}, checks
    stats = emu.stats
    assert set(stats.data_requests_by_ds) == set(emu.data_source_ids)
    assert max(stats.data_requests_by_ds.values()) <= MAX_DATA_REQUESTS
    assert stats.refreshes == len(emu.data_source_ids)


def test_page_checks_say_what_was_asked_and_got(emulator, run_doctor):
    emu = emulator(plain_forms())

    run = run_doctor(emu.tap_config())

    checks = run.checks(emu.data_source_ids[0])
    assert checks["limit"] == ("ok", "asked for 2, got 2")
    assert checks["total"] == ("ok", "present and an integer (40)")
    assert checks["page size"] == ("ok", "asked for 500, got 40 of 40")
    assert checks["sort order"][1].startswith("40 responses in createdAt, then id, order")


def test_an_ignored_updated_from_is_a_warning_not_a_failure(emulator, run_doctor):
    emu = emulator(plain_forms(), ignore_updated_from=True)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    status, detail = run.checks(emu.data_source_ids[0])["updatedFrom"]
    assert status == "WARN"
    assert detail.startswith("ignored:")
    assert "the tap filters on its side, correct but slower" in detail


def test_missing_paging_fields_warn_on_total_and_the_page_size_is_checked_by_the_next_page(
    emulator, run_doctor
):
    emu = emulator(plain_forms(), omit_paging_fields=True)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    checks = run.checks(emu.data_source_ids[0])
    assert checks["total"][0] == "WARN"
    assert checks["total"][1].startswith("not sent")
    assert checks["page size"][0] == "ok"
    assert "nothing after them" in checks["page size"][1]
    assert max(emu.stats.data_requests_by_ds.values()) <= MAX_DATA_REQUESTS


def test_responses_out_of_order_are_a_warning(emulator, run_doctor):
    emu = emulator(plain_forms(), unsorted=True)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    status, detail = run.checks(emu.data_source_ids[0])["sort order"]
    assert status == "WARN"
    assert detail.startswith("not createdAt ascending, then id")
    # Neighbours are swapped: the 2nd response served is the 1st by createdAt.
    assert f"comes after {emu.response_ids(emu.data_source_ids[0])[0]}" in detail


def test_timestamp_styles_are_classified(emulator, run_doctor):
    messy = emulator([FormSpec(responses=60, seed=1)])
    epoch = emulator(plain_forms(), epoch_timestamps=True)

    messy_run = run_doctor(messy.tap_config())
    epoch_run = run_doctor(epoch.tap_config())

    status, detail = messy_run.checks(messy.data_source_ids[0])["timestamps"]
    assert status == "ok"
    for style in ("Jira +0000 x", "Z x", "+00:00 x"):
        assert style in detail
    status, detail = epoch_run.checks(epoch.data_source_ids[0])["timestamps"]
    assert status == "ok"
    assert "read: epoch numbers x" in detail
    assert "Jira" not in detail


def test_api_drift_is_reported_with_the_tally_lines(emulator, run_doctor):
    emu = emulator(plain_forms(), api_drift=True)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.checks(emu.data_source_ids[0])["API drift"][0] == "WARN"
    block = run.stdout.split(f"data source {emu.data_source_ids[0]} (")[1].split("\n\n")[0]
    assert "assumed fields the API never sent: responses.updatedAt absent in all" in block
    # Plain forms have no attachment questions, so no attachments to drift.
    added = [name for name in emulated_drift.ADDED if not name.startswith("attachments.")]
    assert added
    for name in added:
        assert name in block, name


def test_an_ignored_offset_fails_and_exits_1(emulator, run_doctor):
    emu = emulator(plain_forms(), ignore_offset=True)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 1
    status, detail = run.checks(emu.data_source_ids[0])["offset"]
    assert status == "FAIL"
    assert detail.startswith("ignored: offset 1 starts with the 1st response of offset 0")


@pytest.mark.parametrize("omit_paging_fields", [False, True])
def test_a_silent_page_cap_is_found_and_named(emulator, run_doctor, omit_paging_fields):
    emu = emulator(plain_forms(), silent_page_cap=15, omit_paging_fields=omit_paging_fields)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 0, run.stdout + run.stderr
    status, detail = run.checks(emu.data_source_ids[0])["page size"]
    assert status == "WARN"
    assert detail.startswith("silent cap: asked for 500, got 15 ")
    assert "page_size 15 saves requests" in detail
    # The 7-response form fits under the cap: nothing to find there.
    assert run.checks(emu.data_source_ids[1])["page size"][0] == "ok"
    assert max(emu.stats.data_requests_by_ds.values()) <= MAX_DATA_REQUESTS


def test_a_revoked_token_fails_that_data_source_only_and_exits_1(emulator, run_doctor):
    emu = emulator(plain_forms())
    revoked, healthy = emu.data_source_ids
    emu.revoke_chain(revoked)

    run = run_doctor(emu.tap_config())

    assert run.returncode == 1
    status, detail = run.checks(revoked)["token"]
    assert status == "FAIL"
    assert "invalid_grant" in detail
    assert list(run.checks(revoked)) == ["token"]  # nothing else is asked with no token
    assert {status for status, _ in run.checks(healthy).values()} == {"ok"}
    assert "result: 1 FAIL" in run.stdout
    assert "Traceback" not in run.stderr
    assert emu.stats.data_requests_by_ds.get(revoked, 0) == 0


def test_the_rotated_token_is_saved_so_the_next_run_and_the_tap_go_on_with_the_chain(
    emulator, run_doctor, run_tap
):
    emu = emulator(plain_forms())
    config = emu.tap_config()

    first = run_doctor(config)
    second = run_doctor(config)

    assert (first.returncode, second.returncode) == (0, 0), second.stdout + second.stderr
    assert (
        "the rotated refresh token is saved in" in first.checks(emu.data_source_ids[0])["token"][1]
    )
    store_path = second.stdout.split("token store ", 1)[1].split("\n", 1)[0]
    store = TokenStore(Path(store_path))
    for data_source_id in emu.data_source_ids:
        chain = store.read(EntryKey(emu.token_url, emu.client_id, data_source_id))
        assert chain is not None
        assert chain.refresh_token != emu.refresh_token(data_source_id)
    stats = emu.stats
    assert stats.refreshes == 2 * len(emu.data_source_ids)
    assert stats.stale_refresh_uses == 0
    assert stats.revoked_chains == 0
    # The tap shares the store (same folder): it continues the chain the doctor rotated.
    sync = run_tap(config)
    assert sync.returncode == 0, sync.stderr[-3000:]
    assert emu.stats.stale_refresh_uses == 0
    assert emu.stats.revoked_chains == 0


def test_config_from_environment_variables(emulator, run_doctor):
    emu = emulator(plain_forms())

    run = run_doctor(emu.tap_config(), from_env=True)

    assert run.returncode == 0, run.stdout + run.stderr
    assert all(run.checks(ds)["token"][0] == "ok" for ds in emu.data_source_ids)


def test_a_bad_config_is_one_line_per_problem_naming_the_entry(run_doctor):
    run = run_doctor({"client_id": "c", "data_sources": [{"url": "ftp://example.com/x"}]})

    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "tap-smartforms doctor: invalid config: data_sources[0].url: must be an https:// URL"
    ]


@pytest.mark.slow
def test_meltano_invoke_tap_smartforms_doctor(meltano, emulator, tmp_path):
    emu = emulator(plain_forms())
    config = emu.tap_config(token_store_path=str(tmp_path / "tokens.json"))

    result = meltano.run(
        "invoke",
        "tap-smartforms:doctor",
        env=plugin_env("tap-smartforms", config),
        secrets=config_secrets(config),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("tap-smartforms doctor\n")
    assert f"token store {tmp_path / 'tokens.json'}" in result.stdout
    for data_source_id in emu.data_source_ids:
        assert f"data source {data_source_id} (" in result.stdout
    assert "result: every check ok" in result.stdout
    assert emu.stats.refreshes == len(emu.data_source_ids)


def test_an_attachments_path_the_tap_cannot_write_to_fails_in_a_settings_block(
    emulator, run_doctor, tmp_path
):
    emu = emulator(plain_forms())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = str(blocker / "files")

    run = run_doctor(emu.tap_config(attachments_path=path))

    assert run.returncode == 1, run.stdout + run.stderr
    block = run.stdout.split("\nsettings\n", 1)[1].split("\n\n", 1)[0]
    [line] = block.splitlines()
    match = DOCTOR_LINE.match(line)
    assert match is not None, line
    status, name, detail = match.groups()
    assert (status, name) == ("FAIL", "attachments_path")
    assert detail.startswith(f"cannot write to {path}: NotADirectoryError")
    for data_source_id in emu.data_source_ids:  # the API is still checked
        assert list(run.checks(data_source_id)) == CHECKS


def test_readme_doctor_section_names_every_check_in_report_order():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Doctor\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    rows = [row for row in rows if row != "---"]  # the header rule

    assert [name.strip("`") for name in rows] == ["check", *CHECKS]
    assert f"at most {MAX_DATA_REQUESTS} data requests per data source" in section
