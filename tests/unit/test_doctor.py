"""The doctor's checks, each against pages made up here, and the probe against a fake
server that can ignore the offset or cap pages silently."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tap_smartforms import doctor
from tap_smartforms.api_shape import shape_page
from tap_smartforms.doctor import FAIL, OK, WARN, CheckResult, Fetched, SourceReport
from tap_smartforms.errors import REDACTOR, DataSourceError
from tap_smartforms.token_store import EntryKey, TokenStore

DAY = datetime.timedelta(days=1)
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def responses(count: int) -> list[dict[str, Any]]:
    """``count`` responses in the assumed order, one a day, Jira-style timestamps."""
    return [
        {
            "id": f"r-{n:03d}",
            "createdAt": (START + n * DAY).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "updatedAt": (START + n * DAY).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "answers": [],
        }
        for n in range(count)
    ]


def fetched(
    offset: int,
    limit: int,
    served: list[dict[str, Any]],
    /,
    *,
    updated_from: datetime.datetime | None = None,
    **page_fields: Any,
) -> Fetched:
    payload = {"form": {"id": "f1", "questions": []}, "responses": served, **page_fields}
    page = shape_page(payload, "ds-1")
    return Fetched(offset, limit, updated_from, page=page, payload=payload)


def failed(offset: int, limit: int, problem: str, **kwargs: Any) -> Fetched:
    return Fetched(offset, limit, error=problem, **kwargs)


# ------------------------------------------------------------------ limit, offset


def test_limit_honoured_or_ignored():
    assert doctor.check_limit(fetched(0, 2, responses(2))).status == OK
    ignored = doctor.check_limit(fetched(0, 2, responses(5)))
    assert ignored.status == WARN
    assert ignored.detail.startswith("ignored: asked for 2, got 5")


def test_offset_honoured():
    first, second = fetched(0, 2, responses(3)[:2]), fetched(1, 2, responses(3)[1:3])

    assert doctor.check_offset(first, second).status == OK


def test_offset_ignored_fails():
    first, second = fetched(0, 2, responses(2)), fetched(1, 2, responses(2))

    result = doctor.check_offset(first, second)

    assert result.status == FAIL
    assert result.detail.startswith("ignored: offset 1 starts with the 1st response")


def test_offset_counted_in_pages_fails():
    first, second = fetched(0, 2, responses(4)[:2]), fetched(1, 2, responses(4)[2:4])

    result = doctor.check_offset(first, second)

    assert result.status == FAIL
    assert "starts with response r-002" in result.detail


def test_offset_cannot_be_told_with_one_response():
    result = doctor.check_offset(fetched(0, 2, responses(1)), fetched(1, 2, []))

    assert result == CheckResult(
        "offset", WARN, "cannot tell: the data source has fewer than 2 responses"
    )


def test_offset_request_refused_fails_with_the_reason():
    result = doctor.check_offset(fetched(0, 2, responses(2)), failed(1, 2, "HTTP 400: bad offset"))

    assert result == CheckResult("offset", FAIL, "offset 1 limit 2: HTTP 400: bad offset")


# ------------------------------------------------------------------ updatedFrom, total


def test_updated_from_honoured_ignored_or_refused():
    first = fetched(0, 2, responses(2))
    future = doctor.FAR_FUTURE

    honoured = doctor.check_updated_from(first, fetched(0, 2, [], updated_from=future))
    ignored = doctor.check_updated_from(first, fetched(0, 2, responses(2), updated_from=future))
    refused = doctor.check_updated_from(first, failed(0, 2, "HTTP 400", updated_from=future))

    assert honoured.status == OK
    assert ignored.status == WARN
    assert ignored.detail.endswith("the tap filters on its side, correct but slower")
    assert refused.status == FAIL
    assert refused.detail.startswith("the server refused offset 0 limit 2 updatedFrom 2999-01-01")


def test_updated_from_cannot_be_told_without_responses():
    result = doctor.check_updated_from(fetched(0, 2, []), fetched(0, 2, []))

    assert result.status == WARN


@pytest.mark.parametrize(
    ("fields", "status", "start"),
    [
        ({"total": 7}, OK, "present and an integer (7)"),
        ({}, WARN, "not sent"),
        ({"total": "many"}, WARN, "not an integer (a JSON string)"),
        ({"total": None}, WARN, "not an integer (a JSON null)"),
    ],
)
def test_total(fields, status, start):
    result = doctor.check_total(fetched(0, 2, responses(2), **fields))

    assert result.status == status
    assert result.detail.startswith(start)


# ------------------------------------------------------------------ page size


def test_page_size_all_there():
    result = doctor.check_page_size(fetched(0, 500, responses(7), total=7), None)

    assert result == CheckResult("page size", OK, "asked for 500, got 7 of 7")


def test_page_size_silent_cap_with_total_warns_and_names_the_cap():
    result = doctor.check_page_size(fetched(0, 500, responses(100), total=900, limit=500), None)

    assert result.status == WARN
    assert result.detail.startswith("silent cap: asked for 500, got 100 of 900")
    assert "page_size 100 saves requests" in result.detail


def test_page_size_cap_the_reply_declares_is_a_warning():
    result = doctor.check_page_size(fetched(0, 500, responses(100), total=900, limit=100), None)

    assert result.status == WARN
    assert "caps pages at 100 and says so" in result.detail


def test_page_size_without_total_looks_at_the_next_page():
    full = fetched(0, 500, responses(100))

    capped = doctor.check_page_size(full, fetched(100, 500, responses(3)))
    ended = doctor.check_page_size(full, fetched(100, 500, []))

    assert capped.status == WARN
    assert "while offset 100 still holds 3 more" in capped.detail
    assert ended.status == OK


def test_page_size_too_large_is_a_warning():
    result = doctor.check_page_size(failed(0, 500, "HTTP 413", too_large=True), None)

    assert result.status == WARN
    assert "5 MB" in result.detail


# ------------------------------------------------------------------ order, timestamps, drift


def test_sort_order_over_the_longest_page():
    ordered = responses(6)
    swapped = [ordered[1], ordered[0], *ordered[2:]]

    ok = doctor.check_sort_order([fetched(0, 2, ordered[:2]), fetched(0, 500, ordered)])
    out_of_order = doctor.check_sort_order([fetched(0, 500, swapped)])

    assert ok == CheckResult(
        "sort order", OK, "6 responses in createdAt, then id, order, as assumed"
    )
    assert out_of_order.status == WARN
    assert "response r-000 (position 2) comes after r-001" in out_of_order.detail


def test_sort_order_ties_on_created_at_go_by_id():
    same_time = [{**r, "createdAt": "2026-01-01T00:00:00Z"} for r in responses(3)]

    assert doctor.check_sort_order([fetched(0, 500, same_time)]).status == OK
    assert doctor.check_sort_order([fetched(0, 500, same_time[::-1])]).status == WARN


def test_sort_order_cannot_be_told_from_one_response():
    assert doctor.check_sort_order([fetched(0, 500, responses(1))]).status == WARN


@pytest.mark.parametrize(
    ("value", "style"),
    [
        ("2026-01-15T14:23:45.000+0000", "Jira +0000"),
        ("2026-01-15T16:23:45.000+0200", "Jira +0000"),
        ("2026-01-15T14:23:45Z", "Z"),
        ("2026-01-15T16:23:45+02:00", "+00:00"),
        ("2026-01-15T09:23:45.123-05:00", "+00:00"),
        (1768487025000, "epoch numbers"),
        (1768487025.5, "epoch numbers"),
        ("1768487025000", "epoch numbers as text"),
        ("2026-01-15T14:23:45", "no offset"),
        ("yesterday", "unreadable"),
        (True, "unreadable"),
        ({"at": 1}, "unreadable"),
    ],
)
def test_timestamp_style(value, style):
    assert doctor.timestamp_style(value) == style


def test_timestamps_counts_every_style_seen():
    payload = {
        "form": {"createdAt": "2026-01-15T14:23:45.000+0000", "updatedAt": 1768487025000},
        "responses": [
            {"id": "r1", "createdAt": "2026-01-15T14:23:45Z", "updatedAt": "2026-01-15T14:23:45Z"},
            {"id": "r2", "createdAt": "2026-01-15T16:23:45+02:00", "submittedAt": None},
        ],
    }

    result = doctor.check_timestamps([payload])

    assert result.status == OK
    assert result.detail.startswith("5 read: Z x2, Jira +0000 x1, epoch numbers x1, +00:00 x1")


def test_timestamps_without_offset_warn_and_unreadable_fail():
    no_offset = {"responses": [{"id": "r1", "createdAt": "2026-01-15T14:23:45"}]}
    unreadable = {"responses": [{"id": "r1", "createdAt": "soon"}]}

    assert doctor.check_timestamps([no_offset]).status == WARN
    assert doctor.check_timestamps([unreadable]).status == FAIL
    assert doctor.check_timestamps([{"responses": []}]).status == WARN


def test_drift_lines_are_the_report_lines():
    lines = ["assumed fields the API never sent: responses.updatedAt absent in all 3 read"]

    assert doctor.check_drift([]).status == OK
    drifted = doctor.check_drift(lines)
    assert drifted.status == WARN
    assert drifted.more == tuple(lines)


# ------------------------------------------------------------------ the probe


class FakeServer:
    """Serves ``count`` responses by offset and limit, optionally misbehaving."""

    def __init__(
        self,
        count: int,
        *,
        paging_fields: bool = True,
        ignore_offset: bool = False,
        silent_cap: int | None = None,
    ) -> None:
        self.all = responses(count)
        self.paging_fields = paging_fields
        self.ignore_offset = ignore_offset
        self.silent_cap = silent_cap
        self.requests: list[tuple[int, int, bool]] = []

    def __call__(self, offset: int, limit: int, updated_from: datetime.datetime | None) -> Fetched:
        self.requests.append((offset, limit, updated_from is not None))
        matching = [] if updated_from else self.all
        start = 0 if self.ignore_offset else offset
        served = matching[start : start + min(limit, self.silent_cap or limit)]
        fields = (
            {"total": len(matching), "offset": offset, "limit": limit} if self.paging_fields else {}
        )
        return fetched(offset, limit, served, updated_from=updated_from, **fields)


def statuses(results: list[CheckResult]) -> dict[str, str]:
    return {result.name: result.status for result in results}


def test_probe_of_a_healthy_server_is_all_ok_in_four_requests():
    server = FakeServer(30)

    results = doctor.page_checks(server)

    assert set(statuses(results).values()) == {OK}
    assert len(server.requests) == 4


def test_probe_finds_an_ignored_offset():
    results = doctor.page_checks(FakeServer(30, ignore_offset=True))

    assert statuses(results)["offset"] == FAIL


def test_probe_finds_a_silent_cap_with_total():
    server = FakeServer(300, silent_cap=100)

    results = doctor.page_checks(server)

    assert statuses(results)["page size"] == WARN
    assert len(server.requests) == 4


def test_probe_finds_a_silent_cap_without_total_in_one_more_request():
    server = FakeServer(300, silent_cap=100, paging_fields=False)

    results = doctor.page_checks(server)

    assert statuses(results)["page size"] == WARN
    assert server.requests[-1] == (100, 500, False)
    assert len(server.requests) == doctor.MAX_DATA_REQUESTS


def test_probe_stops_when_the_first_page_fails():
    calls = []

    def refusing(offset: int, limit: int, updated_from: datetime.datetime | None) -> Fetched:
        calls.append(offset)
        return failed(offset, limit, "access denied (HTTP 403)")

    results = doctor.page_checks(refusing)

    assert [(r.name, r.status) for r in results] == [("data", FAIL)]
    assert results[0].detail.startswith("access denied (HTTP 403)")
    assert calls == [0]


# ------------------------------------------------------------------ token


class StubAuthenticator:
    def __init__(self, on_refresh: Any) -> None:
        self.on_refresh = on_refresh

    def access_token(self) -> str:
        self.on_refresh()
        return "access"


KEY = EntryKey("https://auth.example.com/oauth/token", "client", "ds-1")


def test_token_refused_fails_with_the_authenticator_reason(tmp_path):
    def refuse() -> None:
        raise DataSourceError("ds-1", "the refresh token was refused (invalid_grant: ...)")

    result = doctor.check_token(StubAuthenticator(refuse), TokenStore(tmp_path / "t.json"), KEY, 10)

    assert result == CheckResult(
        "token", FAIL, "the refresh token was refused (invalid_grant: ...)"
    )


def test_token_rotation_saved_or_not(tmp_path):
    store = TokenStore(tmp_path / "t.json")

    saved = doctor.check_token(
        StubAuthenticator(lambda: store.start_chain(KEY, "rotated-token")), store, KEY, 10
    )
    kept = doctor.check_token(StubAuthenticator(lambda: None), store, KEY, 10)

    assert saved == CheckResult(
        "token", OK, f"refreshed; the rotated refresh token is saved in {store.path}"
    )
    assert kept.status == OK
    assert "no rotation" in kept.detail


def test_token_near_the_end_of_its_chain_warns(tmp_path):
    long_ago = datetime.datetime.now(datetime.timezone.utc) - 360 * DAY
    TokenStore(tmp_path / "t.json", clock=lambda: long_ago).start_chain(KEY, "old-token")
    store = TokenStore(tmp_path / "t.json")

    result = doctor.check_token(StubAuthenticator(lambda: None), store, KEY, 10)

    assert result.status == WARN
    # Not rotated for 360 days: past the 90 days a refresh token lives unused.
    assert "; but its refresh token expires on" in result.detail


# ------------------------------------------------------------------ report and config


def test_report_renders_a_block_per_data_source_and_redacts_secrets():
    REDACTOR.register("secret-value-123")
    reports = [
        SourceReport("ds-1", "site.example", [CheckResult("token", OK, "fine")]),
        SourceReport(
            "ds-2",
            "site.example",
            [
                CheckResult("token", OK, "fine"),
                CheckResult("data", FAIL, "server says secret-value-123"),
                CheckResult("API drift", WARN, "differs:", ("line one",)),
            ],
        ),
    ]

    text = doctor.render(reports, Path("/tmp/tokens.json"))

    assert "secret-value-123" not in text
    assert "  FAIL  data       server says ***\n" in text
    assert "  WARN  API drift  differs:\n                     line one\n" in text
    assert "\ndata source ds-1 (site.example)\n  ok    token      fine\n" in text
    assert text.endswith("result: 1 FAIL, 1 WARN: the tap cannot run as configured\n")


def test_settings_checks_come_first_and_count_in_the_result():
    reports = [SourceReport("ds-1", "site.example", [CheckResult("token", OK, "fine")])]

    text = doctor.render(
        reports,
        Path("/tmp/tokens.json"),
        [CheckResult("attachments_path", FAIL, "cannot write to /x: PermissionError")],
    )

    assert "\nsettings\n  FAIL  attachments_path  cannot write to /x: PermissionError\n" in text
    assert text.index("\nsettings\n") < text.index("\ndata source ds-1 (")
    assert text.endswith("result: 1 FAIL, 0 WARN: the tap cannot run as configured\n")


def test_a_writable_attachments_path_passes_its_check():
    result = doctor.check_attachments_path("memory://doctor-probe/files")

    assert result.status == OK
    assert result.detail == "memory://doctor-probe/files: a probe file was written and deleted"


def test_config_from_env_reads_json_lists_and_text():
    environ = {
        "TAP_SMARTFORMS_DATA_SOURCES": json.dumps([{"url": "https://x/?dataSourceId=a"}]),
        "TAP_SMARTFORMS_PAGE_SIZE": "50",
        "TAP_SMARTFORMS_CLIENT_ID": "client",
        "OTHER": "ignored",
    }

    assert doctor.config_from_env(environ) == {
        "data_sources": [{"url": "https://x/?dataSourceId=a"}],
        "page_size": "50",
        "client_id": "client",
    }


@pytest.mark.parametrize(("text", "value"), [("false", False), ("true", True), ("TRUE", True)])
def test_config_from_env_reads_booleans_as_meltano_writes_them(text: str, value: bool):
    environ = {"TAP_SMARTFORMS_EMIT_ACTIVATE_VERSION_MESSAGES": text}

    assert doctor.config_from_env(environ) == {"emit_activate_version_messages": value}


def test_config_from_env_names_the_variable_never_the_value():
    with pytest.raises(doctor.ConfigError) as raised:
        doctor.config_from_env({"TAP_SMARTFORMS_DATA_SOURCES": "[{not json secret-xyz"})

    assert str(raised.value) == "TAP_SMARTFORMS_DATA_SOURCES: is not JSON"


def test_load_config_merges_files_and_env_in_order(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"client_id": "from-file", "page_size": 10}))

    config = doctor.load_config([str(path), "ENV"], {"TAP_SMARTFORMS_CLIENT_ID": "from-env"})

    assert config == {"client_id": "from-env", "page_size": 10}


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read"), ("{", "is not JSON"), ("[]", "is not a JSON object")],
)
def test_unreadable_config_files_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)

    assert doctor.run(["--config", str(path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"tap-smartforms doctor: --config {path}: {message}")
    assert len(err.splitlines()) == 1
