"""The README's "Add it to your own Meltano project", run for real.

A new project (`meltano init`), the extractor added from the repository's Hub
definition with `--from-ref`, `pip_url` pointed at this checkout as the README says
to do for a local clone, `meltano install`, `meltano invoke tap-smartforms --about`,
and a `meltano run tap-smartforms target-jsonl` against the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_smartforms_emulator import STREAMS, FormSpec
from tests.conftest import (
    MELTANO_EXECUTABLE,
    MELTANO_TEST_TIMEOUT_SECONDS,
    MELTANO_TIMEOUT_SECONDS,
    REPO_ROOT,
    assert_no_secrets,
    config_secrets,
    plugin_env,
    tap_about,
)

HUB_DEFINITION = REPO_ROOT / "hub" / "extractors" / "tap-smartforms.yml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(MELTANO_TEST_TIMEOUT_SECONDS)]


def meltano(
    cwd: Path, *args: str, env: dict[str, str] | None = None, secrets: tuple[str, ...] = ()
) -> str:
    # Nothing from the caller's shell: no Meltano project, no tap or target settings.
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MELTANO_", "TAP_SMARTFORMS", "TARGET_"))
    }
    completed = subprocess.run(
        [str(MELTANO_EXECUTABLE), *args],
        cwd=cwd,
        env={**clean, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})},
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"meltano {' '.join(args)}:\n{completed.stderr[-3000:]}"
    assert_no_secrets([completed.stdout, completed.stderr], list(secrets))
    return completed.stdout


def repository_loader(name: str) -> dict[str, Any]:
    """A loader's entry in the repository's meltano.yml (Meltano Hub is out of reach here)."""
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    loader: dict[str, Any] = next(p for p in project["plugins"]["loaders"] if p["name"] == name)
    return loader


def test_a_new_meltano_project_adds_installs_and_runs_the_tap(tmp_path, emulator):
    meltano(tmp_path, "init", "project", "--no_usage_stats")
    project = tmp_path / "project"

    meltano(
        project, "add", "--plugin-type", "extractor", "tap-smartforms",
        "--from-ref", str(HUB_DEFINITION), "--no-install",
    )  # fmt: skip
    meltano_yml = project / "meltano.yml"
    definition = yaml.safe_load(meltano_yml.read_text(encoding="utf-8"))
    (added,) = definition["plugins"]["extractors"]
    hub = yaml.safe_load(HUB_DEFINITION.read_text(encoding="utf-8"))
    assert added["pip_url"] == hub["pip_url"] == "tap-smartforms"
    assert added["settings"] == hub["settings"]
    # The README's local-clone variant of the pip_url edit, and a loader to run into.
    added["pip_url"] = f"-e {REPO_ROOT}"
    definition["plugins"]["loaders"] = [
        {
            **repository_loader("target-jsonl"),
            "config": {"destination_path": "output", "do_timestamp_file": False},
        }
    ]
    meltano_yml.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")

    meltano(project, "install")

    about = json.loads(meltano(project, "invoke", "tap-smartforms", "--about", "--format=json"))
    assert about == json.loads(tap_about("json"))

    emu = emulator(forms=[FormSpec(responses=30, seed=4), FormSpec(responses=12, seed=5)])
    config = emu.tap_config()
    env = plugin_env("tap-smartforms", config)
    secrets = tuple(config_secrets(config))
    listed = meltano(project, "config", "list", "tap-smartforms", env=env, secrets=secrets)
    (token_url_line,) = [line for line in listed.splitlines() if line.startswith("oauth_token_url")]
    assert f"current value: '{emu.token_url}' (from the TAP_SMARTFORMS_OAUTH_TOKEN_URL" in (
        token_url_line
    )
    (secret_line,) = [line for line in listed.splitlines() if line.startswith("client_secret")]
    assert "current value: (redacted)" in secret_line
    meltano(project, "run", "tap-smartforms", "target-jsonl", env=env, secrets=secrets)

    truth = emu.truth()
    for stream in STREAMS:
        lines = (project / "output" / f"{stream}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(truth[stream]), stream
    assert_no_secrets(
        [path.read_text(encoding="utf-8") for path in (project / "output").iterdir()],
        config_secrets(config),
    )
