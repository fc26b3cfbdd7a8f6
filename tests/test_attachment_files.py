"""attachments_path: the tap process keeps every attachment's file, as the emulator
serves it, and says in the record what became of each one: in a local folder, and in
an S3 bucket (moto's S3 server in the test process, reached as a user reaches S3)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tap_smartforms.attachments import safe_name
from tap_smartforms_emulator import COLUMNS, FormSpec
from tap_smartforms_emulator.files import file_bytes
from tests.conftest import TapRun, by_key

FILE_COLUMNS = COLUMNS["attachments"][-5:]


@pytest.fixture
def one_form(emulator):
    return emulator([FormSpec(responses=12, seed=5)])


def key_of(record: dict) -> str:
    return record["download_url"].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for this module's tests."""
    # Not a line per S3 request in a failing test's report.
    werkzeug_logger = logging.getLogger("werkzeug")
    level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    werkzeug_logger.setLevel(level)


@pytest.fixture
def s3_bucket(moto_url, monkeypatch, tmp_path) -> Any:
    """A new, empty bucket on moto; the tap process (which inherits this environment)
    finds it as a user's s3fs finds S3: AWS_ENDPOINT_URL and the standard credential
    variables, with no AWS config file, profile or instance metadata of the machine."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client("s3")
    bucket = f"attachments-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def bucket_objects(s3: Any, bucket: str) -> dict[str, bytes]:
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def assert_a_second_run_downloads_nothing(
    emu: Any, run_tap: Any, config: dict[str, Any], records: list[dict[str, Any]]
) -> None:
    """A second run requests no file and reports each one as stored before."""
    second = run_tap(config)

    assert second.returncode == 0, second.stderr
    assert len(emu.file_requests) == len(records), "a stored file was downloaded again"
    again = by_key(second.records("attachments"), "attachments")
    for record in records:
        assert again[(record["id"],)]["sha256"] == record["sha256"]
        assert again[(record["id"],)]["stored_path"] == record["stored_path"]


def test_every_file_is_stored_once_with_the_emulators_bytes(one_form, run_tap, tmp_path):
    root = tmp_path / "files"
    config = one_form.tap_config(attachments_path=str(root))

    first = run_tap(config)

    assert first.returncode == 0, first.stderr
    records = first.records("attachments")
    truth = by_key(one_form.truth()["attachments"], "attachments")
    assert records
    assert len(records) == len(truth)
    for record in records:
        expected = file_bytes(key_of(record), record["size_bytes"])
        stored = Path(record["stored_path"])
        assert stored.read_bytes() == expected
        assert stored.parent.parent.parent == root
        assert stored.name.startswith(record["id"] + "-")
        assert record["sha256"] == hashlib.sha256(expected).hexdigest()
        assert record["stored_size_bytes"] == len(expected)
        assert record["downloaded_at"] is not None
        assert record["download_error"] is None
        api_columns = {k: v for k, v in record.items() if k not in FILE_COLUMNS}
        expected_api = {k: v for k, v in truth[(record["id"],)].items() if k not in FILE_COLUMNS}
        assert api_columns == expected_api
    assert len(one_form.file_requests) == len(records)
    assert not list(root.rglob("*.partial"))

    assert_a_second_run_downloads_nothing(one_form, run_tap, config, records)


def test_a_changed_or_half_written_file_is_fetched_again(one_form, run_tap, tmp_path):
    root = tmp_path / "files"
    config = one_form.tap_config(attachments_path=str(root))
    first = run_tap(config)
    assert first.returncode == 0, first.stderr
    stored = [r for r in first.records("attachments") if r["size_bytes"] > 10]
    changed, killed = Path(stored[0]["stored_path"]), Path(stored[1]["stored_path"])
    changed.write_bytes(b"short")
    # What a run killed mid-download leaves: the temporary file, no final one.
    killed.rename(killed.with_name(killed.name + ".partial"))
    requests_before = len(one_form.file_requests)

    second = run_tap(config)

    assert second.returncode == 0, second.stderr
    assert len(one_form.file_requests) == requests_before + 2
    for record in stored[:2]:
        path = Path(record["stored_path"])
        assert path.read_bytes() == file_bytes(key_of(record), record["size_bytes"])
    assert not list(root.rglob("*.partial"))


def answered_responses(emu, ds_id: str) -> list[str]:
    """Responses with at least one answer, in API order: a file attaches to an answer."""
    answered = {a["response_id"] for a in emu.truth()["answers"] if a["data_source_id"] == ds_id}
    return [r for r in emu.response_ids(ds_id) if r in answered]


def test_files_that_cannot_be_downloaded_keep_their_records(one_form, run_tap, tmp_path):
    ds_id = one_form.data_source_ids[0]
    responses = answered_responses(one_form, ds_id)
    keys = {
        "expired": one_form.attach_file(ds_id, responses[0], "a.pdf", serving="expired"),
        "forbidden": one_form.attach_file(ds_id, responses[1], "b.pdf", serving="forbidden"),
        "missing": one_form.attach_file(ds_id, responses[2], "c.pdf", serving="missing"),
        "unicode": one_form.attach_file(ds_id, responses[3], "Отчёт 報告 ✓.pdf", size=5000),
        "traversal": one_form.attach_file(ds_id, responses[4], "../../etc/passwd", size=300),
        "large": one_form.attach_file(ds_id, responses[5], "big.bin", size=3_000_000),
        "elsewhere": one_form.attach_file(ds_id, responses[6], "x.txt", host="localhost"),
    }
    root = tmp_path / "files"

    run = run_tap(one_form.tap_config(attachments_path=str(root)))

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    by_file = {key_of(r): r for r in run.records("attachments")}
    for kind in ("expired", "forbidden", "missing"):
        record = by_file[keys[kind]]
        assert record["stored_path"] is None
        assert record["sha256"] is None
        assert "HTTP" in record["download_error"]
        assert "\n" not in record["download_error"]
        [line] = [line for line in run.stderr.splitlines() if f"att-{keys[kind]}" in line]
        assert f"data source {ds_id}" in line
    assert "404" in by_file[keys["missing"]]["download_error"]
    assert "expired" in by_file[keys["expired"]]["download_error"]
    assert "3 not downloaded" in run.stderr
    for kind in ("unicode", "traversal", "large", "elsewhere"):
        record = by_file[keys[kind]]
        assert record["download_error"] is None, record["download_error"]
        path = Path(record["stored_path"])
        assert path.read_bytes() == file_bytes(keys[kind], record["size_bytes"])
        assert path.resolve().is_relative_to(root.resolve())
    assert "Отчёт 報告 ✓.pdf" in by_file[keys["unicode"]]["stored_path"]
    assert "/etc/passwd" not in by_file[keys["traversal"]]["stored_path"]
    tokens = {(r.key == keys["elsewhere"], r.bearer) for r in one_form.file_requests}
    assert tokens == {(True, False), (False, True)}, "the token went to the wrong host"


def test_a_file_over_max_attachment_bytes_is_not_downloaded(one_form, run_tap, tmp_path):
    ds_id = one_form.data_source_ids[0]
    big = one_form.attach_file(
        ds_id, answered_responses(one_form, ds_id)[0], "big.bin", size=200_000
    )

    run = run_tap(
        one_form.tap_config(attachments_path=str(tmp_path / "f"), max_attachment_bytes=100_000)
    )

    assert run.returncode == 0, run.stderr
    [record] = [r for r in run.records("attachments") if key_of(r) == big]
    assert record["download_error"].startswith("too large")
    assert record["stored_path"] is None
    assert big not in {r.key for r in one_form.file_requests}


def test_files_are_stored_once_in_an_s3_bucket_at_the_documented_keys(one_form, run_tap, s3_bucket):
    s3, bucket = s3_bucket
    config = one_form.tap_config(attachments_path=f"s3://{bucket}/prefix")

    first = run_tap(config)

    assert first.returncode == 0, first.stderr
    records = first.records("attachments")
    assert records
    expected_objects = {}
    for record in records:
        expected = file_bytes(key_of(record), record["size_bytes"])
        name = safe_name(f"{record['id']}-{record['file_name']}")
        key = f"prefix/{record['data_source_id']}/{record['response_id']}/{name}"
        expected_objects[key] = expected
        assert record["stored_path"] == f"s3://{bucket}/{key}"
        assert record["sha256"] == hashlib.sha256(expected).hexdigest()
        assert record["stored_size_bytes"] == len(expected)
        assert record["download_error"] is None
    # Every file at its key with the emulator's bytes; no .partial, no probe file left.
    assert bucket_objects(s3, bucket) == expected_objects
    assert len(one_form.file_requests) == len(records)

    assert_a_second_run_downloads_nothing(one_form, run_tap, config, records)


def assert_stopped_before_any_request(run: TapRun, emu: Any, path: str, cause: str) -> None:
    """The run failed at once: exit 1, one ERROR line naming attachments_path, the path
    and the cause, no traceback, no message on stdout, no request to the API."""
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    [line] = run.error_lines
    logger, message = line.split("| ")[2:4]
    assert logger.strip() == "tap-smartforms"
    assert message.startswith(f"attachments_path: cannot write to {path}: "), message
    assert cause in message
    assert emu.stats.token_requests == 0
    assert emu.stats.data_requests == 0
    assert not emu.file_requests


def test_an_attachments_path_inside_a_file_stops_the_run_before_any_request(
    one_form, run_tap, tmp_path
):
    # A folder that cannot be created (its parent is a file): unlike chmod, this
    # holds for root too, as the tests may run.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = str(blocker / "files")

    run = run_tap(one_form.tap_config(attachments_path=path))

    assert_stopped_before_any_request(run, one_form, path, "Not a directory")


def test_an_unknown_attachments_protocol_stops_the_run_before_any_request(one_form, run_tap):
    path = "nosuchfs://bucket/files"

    run = run_tap(one_form.tap_config(attachments_path=path))

    assert_stopped_before_any_request(run, one_form, path, "Protocol not known: nosuchfs")


def test_a_missing_s3_bucket_stops_the_run_before_any_request(one_form, run_tap, s3_bucket):
    s3, bucket = s3_bucket
    path = f"s3://{bucket}-missing/prefix"

    run = run_tap(one_form.tap_config(attachments_path=path))

    assert_stopped_before_any_request(run, one_form, path, "bucket does not exist")
    # The probe creates no bucket: a mistyped name must not become a new bucket.
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert f"{bucket}-missing" not in names
