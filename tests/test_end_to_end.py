"""The real tap process against the emulator: what it emits is what the API holds."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tap_smartforms_emulator import COLUMNS, STREAMS, FormSpec
from tests.conftest import by_key, keys

TIMESTAMP_COLUMNS = {
    "forms": ("created_at", "updated_at"),
    "responses": ("created_at", "updated_at", "submitted_at"),
    "answers": ("response_updated_at",),
    "attachments": ("response_updated_at",),
}


def assert_synced_every_stream(run) -> None:
    """The run finished cleanly and emitted records of every stream: checks of the
    records below cannot pass on a tap that stopped before syncing."""
    assert run.returncode == 0, run.stderr
    for stream in STREAMS:
        assert run.records(stream), f"{stream}: no records"


def assert_matches_truth(run, truth) -> None:
    for stream in STREAMS:
        emitted = run.records(stream)
        expected = by_key(truth[stream], stream)
        assert set(keys(emitted, stream)) == set(expected), f"{stream}: keys differ"
        for key, record in by_key(emitted, stream).items():
            assert record == expected[key], f"{stream} {key}: values differ"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def bookmark(state: dict, data_source_id: str) -> str | None:
    for partition in state["bookmarks"]["responses"].get("partitions", []):
        if partition["context"] == {"data_source_id": data_source_id}:
            return partition.get("replication_key_value")
    return None


@pytest.fixture
def two_messy_forms(emulator):
    return emulator([FormSpec(responses=130, seed=11), FormSpec(responses=75, seed=12)])


def test_every_stream_matches_the_emulator_truth(two_messy_forms, run_tap):
    run = run_tap(two_messy_forms.tap_config(page_size=50))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, two_messy_forms.truth())


def test_records_have_exactly_the_data_model_columns_in_its_order(two_messy_forms, run_tap):
    run = run_tap(two_messy_forms.tap_config(page_size=50))

    assert_synced_every_stream(run)
    for stream in STREAMS:
        for record in run.records(stream):
            assert tuple(record) == COLUMNS[stream], f"{stream}: columns or their order differ"


def test_primary_keys_are_unique_per_stream(two_messy_forms, run_tap):
    run = run_tap(two_messy_forms.tap_config(page_size=50))

    assert_synced_every_stream(run)
    for stream in STREAMS:
        duplicates = [k for k, n in Counter(keys(run.records(stream), stream)).items() if n > 1]
        assert duplicates == [], f"{stream}: duplicate primary keys"


def test_every_timestamp_is_utc_rfc3339(two_messy_forms, run_tap):
    run = run_tap(two_messy_forms.tap_config(page_size=50))

    assert_synced_every_stream(run)
    truth = two_messy_forms.truth()
    for stream, columns in TIMESTAMP_COLUMNS.items():
        expected = by_key(truth[stream], stream)
        for key, record in by_key(run.records(stream), stream).items():
            for column in columns:
                value = record[column]
                # Null exactly where the API has no instant, so no check is skipped
                # because the tap dropped a timestamp.
                assert (value is None) == (expected[key][column] is None), f"{stream}.{column}"
                if value is not None:
                    assert value.endswith("+00:00"), f"{stream}.{column} = {value}"
                    assert datetime.fromisoformat(value).utcoffset() == timedelta(0)


def test_one_request_per_page_feeds_all_five_streams(two_messy_forms, run_tap):
    page_size = 50
    run = run_tap(two_messy_forms.tap_config(page_size=page_size))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, two_messy_forms.truth())
    stats = two_messy_forms.stats
    for ds_id, responses in zip(two_messy_forms.data_source_ids, (130, 75), strict=True):
        pages = math.ceil(responses / page_size) + (1 if responses % page_size == 0 else 0)
        assert stats.data_requests_by_ds[ds_id] == pages
    assert stats.data_requests == sum(stats.data_requests_by_ds.values())


def test_schema_message_per_stream_is_written_once_before_its_records(two_messy_forms, run_tap):
    run = run_tap(two_messy_forms.tap_config(page_size=20))

    assert_synced_every_stream(run)
    seen_schema: Counter[str] = Counter()
    for message in run.messages:
        if message["type"] == "SCHEMA":
            seen_schema[message["stream"]] += 1
        elif message["type"] == "RECORD":
            assert seen_schema[message["stream"]] == 1
    assert set(seen_schema) == set(STREAMS)
    assert set(seen_schema.values()) == {1}


def test_paging_ends_on_a_confirmed_short_page_when_total_offset_limit_are_missing(
    emulator, run_tap
):
    emu = emulator([FormSpec(responses=99, seed=3)], omit_paging_fields=True)

    run = run_tap(emu.tap_config(page_size=20))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, emu.truth())
    # Pages end at 20, 40, 60, 80 and 99 (each after the first starts one early and
    # asks for one more); the short last page is confirmed by one request bringing
    # nothing new.
    assert emu.stats.data_requests == 5 + 1


def test_an_access_token_expiring_mid_run_is_refreshed(emulator, run_tap):
    emu = emulator([FormSpec(responses=90, seed=4)], access_token_ttl=1.0, latency=0.25)

    run = run_tap(emu.tap_config(page_size=10))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, emu.truth())
    stats = emu.stats
    assert stats.refreshes >= 2
    assert stats.stale_refresh_uses == 0
    assert stats.revoked_chains == 0


def test_second_run_with_state_emits_changed_and_new_responses(emulator, run_tap):
    emu = emulator([FormSpec(responses=80, seed=5)])
    ds_id = emu.data_source_ids[0]
    first = run_tap(emu.tap_config(page_size=25))
    assert first.returncode == 0, first.stderr
    state = first.states[-1]
    # The emulator's data is months old, so the margin does not cap the bookmark:
    # it is the newest updatedAt the emulator holds.
    newest = max(parse_utc(r["updated_at"]) for r in emu.truth()["responses"])
    assert newest < datetime.now(timezone.utc) - timedelta(hours=1)
    since = bookmark(state, ds_id)
    assert since is not None
    assert parse_utc(since) == newest

    updated = set(emu.response_ids(ds_id)[3:60:7])
    for response_id in updated:
        emu.update_response(ds_id, response_id)
    inserted = emu.insert_response(ds_id)
    second = run_tap(emu.tap_config(page_size=25), state=state)

    assert second.returncode == 0, second.stderr
    emitted = {record["id"] for record in second.records("responses")}
    # Exactly the edits, and whatever sat on the newest instant before them.
    on_the_bookmark = {
        r["id"] for r in first.records("responses") if parse_utc(r["updated_at"]) == newest
    }
    assert emitted == updated | {inserted} | on_the_bookmark
    truth = emu.truth(updated_since=datetime.fromisoformat(since))
    assert emitted == {record["id"] for record in truth["responses"]}
    # Answers and attachments follow their responses: exactly those of the changed ones.
    for stream in ("answers", "attachments"):
        assert set(keys(second.records(stream), stream)) == set(keys(truth[stream], stream))


def test_client_side_filter_holds_when_the_server_ignores_updated_from(emulator, run_tap):
    emu = emulator([FormSpec(responses=80, seed=6)], ignore_updated_from=True)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    run = run_tap(emu.tap_config(page_size=25, start_date=start.isoformat()))

    assert run.returncode == 0, run.stderr
    truth = emu.truth(updated_since=start)
    assert 0 < len(truth["responses"]) < 80
    assert_matches_truth(run, truth)


def test_bookmark_is_the_sync_start_minus_five_minutes_when_a_response_is_newer(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=7)])
    ds_id = emu.data_source_ids[0]
    emu.update_response(ds_id, emu.response_ids(ds_id)[0])  # updated "now"
    margin = timedelta(minutes=5)  # README: "start minus 5 minutes"; not the code's constant

    before = datetime.now(timezone.utc)
    run = run_tap(emu.tap_config())
    after = datetime.now(timezone.utc)

    assert run.returncode == 0, run.stderr
    value = bookmark(run.states[-1], ds_id)
    assert value is not None
    # The tap's start lies between ``before`` and ``after``: so does the bookmark,
    # moved back by the margin, so the response updated just now is read again.
    assert before - margin <= parse_utc(value) <= after - margin


def test_a_failing_data_source_does_not_stop_the_others(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=s) for s in (21, 22, 23)])
    forbidden, revoked, healthy = emu.data_source_ids
    emu.set_data_source_failure(forbidden, "forbidden")
    emu.revoke_chain(revoked)

    run = run_tap(emu.tap_config(page_size=15))

    assert run.returncode != 0
    healthy_truth = {r["id"] for r in emu.truth()["responses"] if r["data_source_id"] == healthy}
    assert {r["id"] for r in run.records("responses")} == healthy_truth
    errors = "\n".join(run.error_lines)
    assert f"data source {forbidden}: access denied (HTTP 403)" in errors
    assert f"data source {revoked}: the refresh token was refused (invalid_grant" in errors
    assert "Traceback" not in run.stderr
    final = run.states[-1]
    assert bookmark(final, healthy) is not None
    assert bookmark(final, forbidden) is None
    assert bookmark(final, revoked) is None


@pytest.mark.slow  # the retries' real backoff waits take about 15 s
def test_transient_faults_are_retried_without_losing_a_response(emulator, run_tap):
    emu = emulator([FormSpec(responses=60, seed=8)])
    ds_id = emu.data_source_ids[0]
    for kind in ("500", "truncated", "503", "429", "reset"):
        emu.queue_fault(ds_id, kind)

    run = run_tap(emu.tap_config(page_size=20))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, emu.truth())


def test_a_page_over_the_size_limit_is_fetched_in_smaller_pages(emulator, run_tap):
    emu = emulator([FormSpec(responses=40, seed=9)], max_body_bytes=60_000)

    run = run_tap(emu.tap_config(page_size=40))

    assert run.returncode == 0, run.stderr
    assert_matches_truth(run, emu.truth())
    assert emu.stats.status_counts.get(413, 0) >= 1


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"data_sources": [{"url": "https://x.atlassian.net/rest/v1/datasource"}]}, ".url"),
        (
            {
                "data_sources": [
                    {
                        "url": "http://example.com/ds?dataSourceId=a",
                        "refresh_token": "not-a-real-refresh-token",
                    }
                ]
            },
            ".url",
        ),
        ({"client_id": None}, "client_id"),
    ],
)
def test_bad_config_fails_with_a_line_naming_the_setting(emulator, run_tap, change, setting):
    emu = emulator()
    config = {**emu.tap_config(), **change}
    config = {k: v for k, v in config.items() if v is not None}

    run = run_tap(config)

    assert run.returncode != 0
    assert any(setting in line for line in run.error_lines), run.stderr
    assert "Traceback" not in run.stderr
    assert run.messages == []


def test_about_and_discover_work_without_secrets(emulator, run_tap):
    emu = emulator()

    about = run_tap(emu.tap_config(), args=("--about", "--format=json"))
    discover = run_tap(emu.tap_config(), args=("--discover",))

    assert about.returncode == 0
    assert discover.returncode == 0
    assert '"refresh_token"' in about.stdout
    assert {"forms", "questions", "responses", "answers", "attachments"} <= {
        entry["tap_stream_id"] for entry in __import__("json").loads(discover.stdout)["streams"]
    }
