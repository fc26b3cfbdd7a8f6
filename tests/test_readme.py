"""The README's plugin reference is the tap's current `--about --format=markdown`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tap_smartforms.settings import CONFIG_SCHEMA
from tests.conftest import (
    REPO_ROOT,
    TAP_TIMEOUT_SECONDS,
    assert_no_secrets,
    config_secrets,
    tap_about,
)

SCRIPT = REPO_ROOT / "scripts" / "update_readme_about.py"
README = REPO_ROOT / "README.md"


def check(readme) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_readme_plugin_reference_is_the_current_about_output():
    result = check(README)

    assert result.returncode == 0, result.stderr


def test_readme_plugin_reference_holds_every_setting_of_the_about_output():
    # The copy is the --about output itself, not merely something the script accepts.
    text = README.read_text(encoding="utf-8")
    reference = text[text.index("<!-- about:start -->") : text.index("<!-- about:end -->")]
    rows = [line for line in tap_about("markdown").splitlines() if line.startswith("| ")]

    assert rows
    assert all(row in reference for row in rows)


def test_a_stale_reference_is_reported(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(
        README.read_text(encoding="utf-8").replace("| page_size |", "| page_size_old |"),
        encoding="utf-8",
    )

    result = check(stale)

    assert result.returncode == 1
    assert "stale" in result.stderr


def readme_block(name: str) -> str:
    """The fenced code block between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    text = README.read_text(encoding="utf-8")
    marked = text[text.index(f"<!-- {name}:start -->") : text.index(f"<!-- {name}:end -->")]
    return marked.split("```bash\n", 1)[1].rsplit("```", 1)[0]


@pytest.mark.e2e
def test_the_helper_walkthrough_runs_as_written(tmp_path):
    # The README's commands exactly, in bash, from the repository's folder, with the
    # virtualenv's tools first on PATH (as after `source .venv/bin/activate`); mktemp
    # puts the demo folder under tmp_path so the test can read what it left.
    script = readme_block("helper-walkthrough")
    venv_bin = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "MELTANO_"))},
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(tmp_path),
    }
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the emulator it starts shares its process group
    )
    try:
        stdout, stderr = process.communicate(timeout=TAP_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the emulator, if the script stopped early
    (demo,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    emulator_config = json.loads((demo / "emulator.json").read_text())

    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    data_source_id = emulator_config["data_sources"][0]["url"].rsplit("dataSourceId=", 1)[1]
    assert lines[0].startswith(f"Stored a new refresh token for data source {data_source_id} in")
    (record_count,) = [int(line) for line in lines if line.isdigit()]
    assert record_count > 20  # the form, its questions, 20 responses and their answers
    assert lines[-2:] == [
        f'{{"revoked": "{data_source_id}"}}',
        "the refresh token was refused (invalid_grant: expired, revoked or already used)",
    ]
    assert "using the stored refresh token" in (demo / "run.log").read_text()
    assert_no_secrets([stdout, stderr], config_secrets(emulator_config))


def _configuration_table() -> dict[str, tuple[str, str]]:
    """The README's Configuration table: each top-level setting's type and default."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration") :]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("| `"):
            if rows:
                break
            continue
        name, kind, _required, default = (cell.strip() for cell in line.split("|")[1:5])
        rows[name.strip("`")] = (kind, default)
    return rows


def _as_written(default: object) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, str):
        return f"`{default}`"
    return str(default)


def test_readme_configuration_table_states_the_defaults_and_bounds_of_settings_py():
    table = _configuration_table()

    for name, schema in CONFIG_SCHEMA["properties"].items():
        kind, default = table[name]
        if "default" in schema:
            assert default == _as_written(schema["default"]), name
        else:
            # A prose default ("never", "see Tokens"), never a value the code lacks.
            assert not default.isdigit(), name
            assert default not in ("true", "false"), name
        if "maximum" in schema:
            assert kind == f"integer {schema['minimum']}\N{EN DASH}{schema['maximum']}", name
        elif "minimum" in schema:
            assert kind == f"integer \N{GREATER-THAN OR EQUAL TO} {schema['minimum']}", name


def test_readme_dbt_snowflake_install_pins_the_versions_the_fake_snowflake_test_runs():
    requirements = (REPO_ROOT / "tests" / "snowflake" / "requirements.txt").read_text()
    pins = re.findall(r"^(dbt-(?:core|snowflake)==\S+)$", requirements, re.M)
    assert len(pins) == 2
    assert f"pip install {' '.join(pins)}" in README.read_text()
