"""Shared fixtures: the API emulator and a runner for the real tap process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import PRIMARY_KEYS, Emulator, FormSpec

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


def assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    """No minted token and no configured secret anywhere in what the tap printed."""
    for text in texts:
        found = MINTED_SECRET.search(text)
        assert found is None, f"a token leaked into the output: {found.group(0)[:6]}..."
        for secret in secrets:
            assert secret not in text, "a configured secret leaked into the output"


@pytest.fixture
def run_tap(tmp_path: Path) -> Any:
    """Run ``python -m tap_smartforms`` as a subprocess; every run is scanned for secrets."""
    counter = iter(range(1_000_000))

    def run(
        config: dict[str, Any],
        *,
        state: dict[str, Any] | None = None,
        catalog: dict[str, Any] | None = None,
        args: tuple[str, ...] = (),
    ) -> TapRun:
        number = next(counter)
        config_path = tmp_path / f"config-{number}.json"
        config_path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "tap_smartforms", "--config", str(config_path), *args]
        if state is not None:
            state_path = tmp_path / f"state-{number}.json"
            state_path.write_text(json.dumps(state))
            command += ["--state", str(state_path)]
        if catalog is not None:
            catalog_path = tmp_path / f"catalog-{number}.json"
            catalog_path.write_text(json.dumps(catalog))
            command += ["--catalog", str(catalog_path)]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=TAP_TIMEOUT_SECONDS, check=False
        )
        secrets = [config.get("client_secret", "")] + [
            entry.get(name, "")
            for entry in config.get("data_sources", [])
            if isinstance(entry, dict)
            for name in ("refresh_token", "client_secret")
        ]
        assert_no_secrets([completed.stdout, completed.stderr], [s for s in secrets if s])
        messages = []
        if completed.stdout and not any(a in args for a in ("--about", "--discover")):
            messages = [json.loads(line) for line in completed.stdout.splitlines() if line]
        return TapRun(completed.returncode, completed.stdout, completed.stderr, messages)

    return run


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A factory of started emulators, all stopped at the end of the test."""
    started: list[Emulator] = []

    def make(forms: list[FormSpec] | None = None, **options: Any) -> Emulator:
        emu = Emulator(forms=forms or [FormSpec(responses=60, seed=1)], **options)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()
