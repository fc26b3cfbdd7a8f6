"""A config the tap cannot use stops the real tap process at once: one line per problem,
naming the setting at fault, no traceback, no secret, exit code 1, no request sent."""

from __future__ import annotations

from tests.conftest import config_secrets


def test_typos_and_a_mistyped_sdk_setting_fail_with_one_line_each(emulator, run_tap):
    emu = emulator()
    config = emu.tap_config(page_sise=50, batch_config="jsonl")
    config["data_sources"][0]["refresh_tokn"] = config["data_sources"][0]["refresh_token"]
    data_source_id = emu.data_source_ids[0]

    run = run_tap(config)

    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert sorted(line.split("| ", 3)[-1] for line in run.error_lines) == sorted(
        [
            "page_sise: unknown setting; did you mean page_size?",
            "batch_config: must be an object",
            f"data_sources[0] (data source {data_source_id}): refresh_tokn: unknown setting; "
            "did you mean refresh_token?",
            "Config validation failed",
        ]
    )
    assert emu.stats.data_requests == 0
    for secret in config_secrets(config):
        assert secret not in run.stderr
