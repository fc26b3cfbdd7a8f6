"""The Snowflake load test's own virtualenv, built once per machine and pinned set.

target-snowflake pins singer-sdk 0.55.0b3, which cannot share .venv with the tap's
singer-sdk 0.54.x, so it gets a virtualenv of its own, from requirements.txt here.
It lives in the user's cache folder (not the work tree), named after the hash of
requirements.txt: fresh clones on one machine (CI's included) reuse it, and a change
of pins builds a new one beside it. uv (installed into .venv by scripts/setup) builds
it in seconds from its own package cache; a file lock keeps two test sessions from
building it at once, and the build goes to a temporary folder that is renamed into
place only when complete, so a killed build never leaves a half-made venv behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
BUILD_TIMEOUT_SECONDS = 600


def cache_root() -> Path:
    configured = os.environ.get("TAP_SMARTFORMS_TEST_VENV_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tap-smartforms"


def snowflake_python() -> Path:
    """The Python of the Snowflake test virtualenv, built first if needed."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"snowflake-{digest}"
    python = venv / "bin" / "python"
    with (root / "snowflake.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            _build(venv)
    return python


def _build(venv: Path) -> None:
    uv = Path(sys.executable).with_name("uv")
    building = Path(tempfile.mkdtemp(prefix=f"{venv.name}.building-", dir=venv.parent))
    try:
        if uv.exists():
            _run([str(uv), "venv", "--quiet", "--python", sys.executable, str(building / "v")])
            install = [str(uv), "pip", "install", "--quiet", "--python"]
            _run([*install, str(building / "v" / "bin" / "python"), "-r", str(REQUIREMENTS)])
        else:
            _run([sys.executable, "-m", "venv", str(building / "v")])
            pip = [str(building / "v" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            _run([*pip, "-r", str(REQUIREMENTS)])
        (building / "v").rename(venv)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, timeout=BUILD_TIMEOUT_SECONDS)
