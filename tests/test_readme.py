"""The README's plugin reference is the tap's current `--about --format=markdown`."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT, tap_about

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
