"""attachments.py in-process: safe names, and downloads into fsspec's memory
filesystem from the emulator (the tap process cannot share a memory filesystem)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tap_smartforms import settings as settings_module
from tap_smartforms.attachments import (
    AttachmentDownloader,
    AttachmentStore,
    safe_name,
    writability_problem,
)
from tap_smartforms.tap import build_client
from tap_smartforms.token_store import open_store
from tap_smartforms_emulator import Emulator, FormSpec
from tap_smartforms_emulator.files import file_bytes

LOGGER = logging.getLogger("test-attachments")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "_._etc_passwd"),
        ("..", "file"),
        ("a/b\\c.txt", "a_b_c.txt"),
        ("bell\x07\nline.txt", "bellline.txt"),
        ("Отчёт 報告 ✓.pdf", "Отчёт 報告 ✓.pdf"),
        ("", "file"),
    ],
)
def test_safe_name_is_one_path_component(name, expected):
    assert safe_name(name) == expected


def test_safe_name_caps_the_length_in_bytes_and_keeps_the_extension():
    name = safe_name("ж" * 300 + ".docx", max_bytes=100)

    assert len(name.encode()) <= 100
    assert name.endswith(".docx")


def test_a_traversal_file_name_stays_inside_the_root(tmp_path):
    store = AttachmentStore(str(tmp_path))
    record = {"id": "../x", "data_source_id": "..", "response_id": "r/../../..", "file_name": ".."}

    path = Path(store.path_for(record))

    assert path.resolve().is_relative_to(tmp_path.resolve())
    assert len(path.relative_to(tmp_path).parts) == 3


@pytest.fixture
def served(tmp_path):
    with Emulator([FormSpec(responses=8, seed=3)]) as emulator:
        config = emulator.tap_config(token_store_path=str(tmp_path / "tokens.json"))
        settings = settings_module.parse(config)
        source = settings.data_sources[0]
        client = build_client(
            settings, source, open_store(settings.token_store_path), user_agent="t", logger=LOGGER
        )
        yield emulator, client


def _resolve(
    records: list[dict[str, Any]],
    client: Any,
    root: str,
    *,
    workers: int,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """Download ``records`` into ``root`` with a fresh downloader, closed afterwards."""
    downloader = AttachmentDownloader(
        AttachmentStore(root),
        workers=workers,
        max_bytes=None,
        deadline_seconds=30,
        logger=LOGGER,
        **({"sleep": sleep} if sleep is not None else {}),
    )
    try:
        return downloader.resolve(records, client)
    finally:
        downloader.close()


def test_files_go_to_fsspecs_memory_filesystem(served):
    emulator, client = served
    records = [
        record
        for bundle in client.fetch_page(offset=0, limit=50, updated_from=None).responses
        for record in bundle.attachments
    ]
    outcome = _resolve(records, client, "memory://attachments-test", workers=3)

    memory = fsspec.filesystem("memory")
    assert records
    assert outcome.stored == len(records)
    assert outcome.failed == 0
    for record in records:
        expected = file_bytes(record["download_url"].rsplit("/", 1)[-1], record["size_bytes"])
        assert record["stored_path"].startswith("memory:///attachments-test/")
        assert memory.cat_file(record["stored_path"]) == expected
        assert record["sha256"] == hashlib.sha256(expected).hexdigest()
    assert not memory.glob("/attachments-test/**/*.partial")
    assert len(emulator.file_requests) == len(records)
    memory.rm("/attachments-test", recursive=True)


def test_a_missing_file_is_named_in_one_line_without_retrying(served):
    emulator, client = served
    page = client.fetch_page(offset=0, limit=50, updated_from=None)
    record = dict(next(r for bundle in page.responses for r in bundle.attachments))
    record["download_url"] = emulator.base_url + "/no-such-path-gives-404"
    waits: list[float] = []
    outcome = _resolve([record], client, "memory://attachments-404", workers=1, sleep=waits.append)

    assert outcome.failed == 1
    assert record["download_error"].startswith("not found (HTTP 404)")
    assert record["stored_path"] is None
    assert waits == []  # a 404 is not worth retrying


def test_a_server_error_is_retried(served):
    emulator, client = served
    ds_id = emulator.data_source_ids[0]
    key = emulator.attach_file(ds_id, emulator.response_ids(ds_id)[0], "f.txt", serving="flaky")
    page = client.fetch_page(offset=0, limit=50, updated_from=None)
    [record] = [r for b in page.responses for r in b.attachments if r["id"] == f"att-{key}"]
    waits: list[float] = []
    outcome = _resolve(
        [record], client, "memory://attachments-flaky", workers=1, sleep=waits.append
    )

    assert outcome.stored == 1
    assert len(waits) == 1
    assert fsspec.filesystem("memory").cat_file(record["stored_path"]) == file_bytes(key, 1000)
    assert [r.key for r in emulator.file_requests] == [key, key]


class CountingLimiter:
    """Stands in for the data source's request budget, counting what it admits."""

    def __init__(self) -> None:
        self.slots = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.slots += 1
        yield


def test_downloads_on_the_api_host_count_against_the_request_budget(served):
    emulator, client = served
    ds_id = emulator.data_source_ids[0]
    responses = emulator.response_ids(ds_id)
    emulator.attach_file(ds_id, responses[0], "elsewhere.txt", host="localhost")
    page = client.fetch_page(offset=0, limit=50, updated_from=None)
    records = [r for b in page.responses for r in b.attachments]
    budget = CountingLimiter()
    client.limiter = budget  # type: ignore[assignment]
    outcome = _resolve(records, client, "memory://attachments-budget", workers=2)

    assert outcome.stored == len(records)
    assert budget.slots == len(records) - 1  # not the file on another host


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("attachments_path", 7),
        ("max_attachment_bytes", 0),
        ("attachment_downloads_in_parallel", 33),
    ],
)
def test_a_bad_attachment_setting_is_named_in_one_line(setting, value):
    with Emulator() as emulator:
        problems = settings_module.validate(emulator.tap_config(**{setting: value}))

    assert len(problems) == 1
    assert problems[0].startswith(f"{setting}: must be")


def test_attachment_settings_are_read():
    with Emulator() as emulator:
        parsed = settings_module.parse(
            emulator.tap_config(
                attachments_path="s3://bucket/files",
                max_attachment_bytes="1000",
                attachment_downloads_in_parallel=2,
            )
        )

    assert parsed.attachments_path == "s3://bucket/files"
    assert parsed.max_attachment_bytes == 1000
    assert parsed.attachment_downloads_in_parallel == 2


def test_a_redirect_to_another_host_does_not_carry_the_token(served):
    emulator, client = served
    ds_id = emulator.data_source_ids[0]
    key = emulator.attach_file(ds_id, emulator.response_ids(ds_id)[0], "r.txt", serving="redirect")
    page = client.fetch_page(offset=0, limit=50, updated_from=None)
    [record] = [r for b in page.responses for r in b.attachments if r["id"] == f"att-{key}"]
    outcome = _resolve([record], client, "memory://attachments-redirect", workers=1)

    assert outcome.stored == 1
    assert [(r.host.split(":")[0], r.bearer) for r in emulator.file_requests] == [
        ("127.0.0.1", True),
        ("localhost", False),
    ]


def test_a_writable_root_passes_the_probe_and_keeps_no_probe_file():
    memory = fsspec.filesystem("memory")

    assert writability_problem("memory://probe-test/files") is None

    assert memory.find("/probe-test") == []


def test_the_probe_creates_a_missing_local_folder(tmp_path):
    root = tmp_path / "new" / "files"

    assert writability_problem(str(root)) is None

    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_a_probe_failure_is_one_line_without_the_urls_password():
    problem = writability_problem("nosuchfs://user:hunter22@host/files")

    assert problem == (
        "attachments_path: cannot write to nosuchfs://***@host/files: "
        "ValueError: Protocol not known: nosuchfs"
    )
