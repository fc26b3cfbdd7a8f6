"""Shared fixtures: the API emulator and a runner for the real tap process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_smartforms.refresh_gate import REFRESH_GATE
from tap_smartforms_emulator import PRIMARY_KEYS, Emulator, FormSpec

# Tokens the emulator mints look like these; none may ever reach the tap's output.
MINTED_SECRET = re.compile(r"\b(?:at|rt|code)-[0-9a-f]{16,}")
TAP_TIMEOUT_SECONDS = 180


@dataclass
class TapRun:
    """What one run of the tap process printed, parsed."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line]


def keys(records: list[dict[str, Any]], stream: str) -> list[tuple[Any, ...]]:
    """Primary keys of records, in order (duplicates kept)."""
    return [tuple(record[name] for name in PRIMARY_KEYS[stream]) for record in records]


def by_key(records: list[dict[str, Any]], stream: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return dict(zip(keys(records, stream), records, strict=True))


def config_secrets(config: dict[str, Any]) -> list[str]:
    """The secrets a tap config holds: client secrets and refresh tokens."""
    secrets = [config.get("client_secret", "")] + [
        entry.get(name, "")
        for entry in config.get("data_sources", [])
        if isinstance(entry, dict)
        for name in ("refresh_token", "client_secret")
    ]
    return [secret for secret in secrets if secret]


def assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    """No minted token and no configured secret anywhere in what the tap printed."""
    for text in texts:
        found = MINTED_SECRET.search(text)
        assert found is None, f"a token leaked into the output: {found.group(0)[:6]}..."
        for secret in secrets:
            assert secret not in text, "a configured secret leaked into the output"


def tap_runner(workdir: Path) -> Any:
    """A function running ``python -m tap_smartforms`` as a subprocess, its files in
    ``workdir``; every run is scanned for secrets."""
    counter = iter(range(1_000_000))

    def run(
        config: dict[str, Any],
        *,
        state: dict[str, Any] | None = None,
        catalog: dict[str, Any] | None = None,
        args: tuple[str, ...] = (),
    ) -> TapRun:
        number = next(counter)
        # Runs of one test share a token store in its own folder, never the user's.
        config = {"token_store_path": str(workdir / "tokens.json"), **config}
        config_path = workdir / f"config-{number}.json"
        config_path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "tap_smartforms", "--config", str(config_path), *args]
        if state is not None:
            state_path = workdir / f"state-{number}.json"
            state_path.write_text(json.dumps(state))
            command += ["--state", str(state_path)]
        if catalog is not None:
            catalog_path = workdir / f"catalog-{number}.json"
            catalog_path.write_text(json.dumps(catalog))
            command += ["--catalog", str(catalog_path)]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=TAP_TIMEOUT_SECONDS, check=False
        )
        assert_no_secrets([completed.stdout, completed.stderr], config_secrets(config))
        messages = []
        if completed.stdout and not any(a in args for a in ("--about", "--discover")):
            messages = [json.loads(line) for line in completed.stdout.splitlines() if line]
        return TapRun(completed.returncode, completed.stdout, completed.stderr, messages)

    return run


@dataclass
class DoctorRun:
    """What one run of ``tap-smartforms doctor`` printed."""

    returncode: int
    stdout: str
    stderr: str

    def checks(self, data_source_id: str) -> dict[str, tuple[str, str]]:
        """``check name -> (status, detail)`` in the report's block of one data source."""
        block = self.stdout.split(f"data source {data_source_id} (", 1)[1].split("\n\n", 1)[0]
        found = (DOCTOR_LINE.match(line) for line in block.splitlines()[1:])
        return {m.group(2): (m.group(1), m.group(3)) for m in found if m}


# "  WARN  sort order   not createdAt ..." (names are padded to one width)
DOCTOR_LINE = re.compile(r"^  (ok|WARN|FAIL)\s+(\S+(?: \S+)*)\s{2,}(.*)$")


def doctor_runner(workdir: Path) -> Any:
    """A function running ``python -m tap_smartforms doctor`` as a subprocess, with the
    config in a file (or, ``from_env``, in TAP_SMARTFORMS_* variables and ``--config
    ENV``), its token store in ``workdir``; every run is scanned for secrets."""
    counter = iter(range(1_000_000))

    def run(config: dict[str, Any], *, from_env: bool = False) -> DoctorRun:
        config = {"token_store_path": str(workdir / "tokens.json"), **config}
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SMARTFORMS")}
        if from_env:
            env.update(plugin_env("tap-smartforms", config))
            config_arg = "ENV"
        else:
            config_path = workdir / f"doctor-config-{next(counter)}.json"
            config_path.write_text(json.dumps(config))
            config_arg = str(config_path)
        completed = subprocess.run(
            [sys.executable, "-m", "tap_smartforms", "doctor", "--config", config_arg],
            capture_output=True,
            text=True,
            timeout=TAP_TIMEOUT_SECONDS,
            check=False,
            env=env,
        )
        assert_no_secrets([completed.stdout, completed.stderr], config_secrets(config))
        return DoctorRun(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.fixture
def run_doctor(tmp_path: Path) -> Any:
    """Run ``tap-smartforms doctor`` as a subprocess; every run is scanned for secrets."""
    return doctor_runner(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def token_stores_stay_out_of_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A tap run without token_store_path (the SDK's standard tests, in process)
    falls back to the per-user state folder: point that at a scratch folder, and
    forget any Meltano project the developer's shell is in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
        patch.delenv("MELTANO_PROJECT_ROOT", raising=False)
        patch.delenv("MELTANO_SYS_DIR_ROOT", raising=False)
        yield


@pytest.fixture(autouse=True)
def refresh_gate_reopened() -> Iterator[None]:
    """A tap run in process (the SDK's standard tests) closes the process-wide refresh
    gate as it ends (refresh_gate.py); the next test starts with it open."""
    yield
    REFRESH_GATE.reopen()


@pytest.fixture
def run_tap(tmp_path: Path) -> Any:
    """Run ``python -m tap_smartforms`` as a subprocess; every run is scanned for secrets."""
    return tap_runner(tmp_path)


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A factory of started emulators, all stopped at the end of the test: the one
    emulator fixture, for the tap's tests and the emulator's own."""
    started: list[Emulator] = []

    def make(forms: list[FormSpec] | None = None, **options: Any) -> Emulator:
        emu = Emulator(forms=forms or [FormSpec(responses=60, seed=1)], **options)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """An HTTP session for talking to an emulator directly."""
    with requests.Session() as http:
        yield http


# ------------------------------------------------------------------ Meltano

REPO_ROOT = Path(__file__).resolve().parent.parent
# Meltano runs from its own tool environment, not the tap's .venv (scripts/setup).
MELTANO_EXECUTABLE = REPO_ROOT / ".tools" / "bin" / "meltano"
MELTANO_ENVIRONMENT = "demo"  # meltano.yml's default environment
MELTANO_TIMEOUT_SECONDS = 300


def meltano_env_prefix(plugin_name: str) -> str:
    """The prefix of a plugin's setting variables, derived from its name as Meltano does."""
    return re.sub(r"[^A-Za-z0-9]", "_", plugin_name).upper()


def plugin_env(plugin_name: str, config: Mapping[str, Any]) -> dict[str, str]:
    """Settings as the plugin's environment variables: how users keep secrets out of
    meltano.yml (in .env), and how these tests hand Meltano an emulator's config."""
    prefix = meltano_env_prefix(plugin_name)
    return {
        f"{prefix}_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in config.items()
    }


def tap_about(output_format: str) -> str:
    """What ``tap-smartforms --about --format=<output_format>`` prints."""
    completed = subprocess.run(
        [sys.executable, "-m", "tap_smartforms", "--about", f"--format={output_format}"],
        capture_output=True,
        text=True,
        timeout=TAP_TIMEOUT_SECONDS,
        check=True,
    )
    return completed.stdout


def responses_bookmarks(state: dict[str, Any]) -> dict[str, str]:
    """The ``responses`` bookmark of each data source in a Singer state."""
    partitions = state["bookmarks"]["responses"].get("partitions", [])
    return {
        partition["context"]["data_source_id"]: partition["replication_key_value"]
        for partition in partitions
        if "replication_key_value" in partition
    }


@dataclass(frozen=True)
class MeltanoProject:
    """The repository's Meltano project (its meltano.yml) with a system directory of its own.

    Plugin venvs, the system database (so the state) and run files live under
    ``sys_dir`` (MELTANO_SYS_DIR_ROOT), so the tests start from no state and never
    touch the developer's .meltano/ or the demo's; settings come only from
    meltano.yml and the variables a test passes.
    """

    sys_dir: Path
    root: Path = REPO_ROOT

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Settings come only from meltano.yml and `extra`, never from the caller's shell.
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("MELTANO_", "TAP_SMARTFORMS", "TARGET_"))
        }
        return {
            **inherited,
            "MELTANO_PROJECT_ROOT": str(self.root),
            "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.sys_dir / 'meltano.db'}",
            "MELTANO_ENVIRONMENT": MELTANO_ENVIRONMENT,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            **(extra or {}),
        }

    def command(self, *args: str) -> list[str]:
        # An empty .env of our own: a developer's .env (real tokens) stays out of tests.
        dotenv = self.sys_dir / "tests.env"
        dotenv.touch()
        return [str(MELTANO_EXECUTABLE), "--env-file", str(dotenv), *args]

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, secrets: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Run ``meltano <args>`` to the end; its output is scanned for secrets."""
        completed = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT_SECONDS,
            check=False,
        )
        assert_no_secrets([completed.stdout, completed.stderr], list(secrets))
        return completed

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``meltano <args>`` and return at once (for runs side by side)."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def state_id(self, extractor: str, loader: str, suffix: str) -> str:
        """The state ID `meltano run --state-id-suffix <suffix> <extractor> <loader>` uses."""
        return f"{MELTANO_ENVIRONMENT}:{extractor}-to-{loader}:{suffix}"

    def state(self, state_id: str) -> dict[str, Any]:
        """The Singer state Meltano saved under ``state_id``."""
        result = self.run("state", "get", state_id)
        assert result.returncode == 0, result.stderr[-3000:]
        state: dict[str, Any] = json.loads(result.stdout)["singer_state"]
        return state


# pytest-timeout's default (pyproject.toml) counts fixture set-up too: a Meltano test
# may install every plugin and run two pipelines, each bounded by the subprocess
# timeout above, before its body starts.
MELTANO_TEST_TIMEOUT_SECONDS = 4 * MELTANO_TIMEOUT_SECONDS


# Modules whose tests sync the real tap process against the emulator. Each test
# takes one to several seconds (a process start with the SDK's imports, then a sync),
# some 260 of them about seven minutes on two cores: too slow for the lane run while
# working, so every `e2e` test is also `slow` and `bash scripts/test --fast` leaves them
# to the full run (CI). Listed here, not in each module, so a new end-to-end module
# is one line.
TESTS_DIR = Path(__file__).resolve().parent
END_TO_END_MODULES = frozenset(
    {
        "test_api_drift",
        "test_attachment_files",
        "test_capabilities",
        "test_child_streams",
        "test_config_errors",
        "test_doctor",
        "test_end_to_end",
        "test_output",
        "test_output_caps",
        "test_paging_end_to_end",
        "test_parallel_sync",
        "test_reliability",
        "test_token_exit",
        "test_tokens",
        "test_transport_faults",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "meltano" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(MELTANO_TEST_TIMEOUT_SECONDS))
        # tests/unit/ has modules of the same names (test_doctor.py): only tests/ itself.
        if item.path.parent == TESTS_DIR and item.path.stem in END_TO_END_MODULES:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> MeltanoProject:
    """The Meltano project, every plugin installed once per test session."""
    project = MeltanoProject(tmp_path_factory.mktemp("meltano-system"))
    installed = project.run("install")
    assert installed.returncode == 0, installed.stderr[-3000:]
    return project
