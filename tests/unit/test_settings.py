"""Settings validation: one line per problem, naming the entry and setting, never a value."""

from __future__ import annotations

from typing import Any

import pytest

from tap_smartforms.settings import SettingsError, parse, validate

BASE = "https://site.atlassian.net/gateway/api/svc/jira/apps/a_b/rest/v1/datasource"
URL = f"{BASE}?dataSourceId=ds-7"
SECRETS = ("rt-very-secret-token", "cs-very-secret-client")


def _config(**changes: Any) -> dict[str, Any]:
    entry = {"url": URL, "refresh_token": SECRETS[0]}
    entry.update(changes.pop("entry", {}))
    config = {"client_id": "client", "client_secret": SECRETS[1], "data_sources": [entry]}
    config.update(changes)
    return config


def test_a_complete_config_has_no_problems():
    assert validate(_config()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"entry": {"url": BASE}}, "data_sources[0].url: has no dataSourceId"),
        ({"entry": {"url": URL.replace("https", "http")}}, "data_sources[0].url: must use https"),
        ({"entry": {"url": "ftp://x/?dataSourceId=1"}}, "data_sources[0].url: must be an https"),
        ({"client_id": None}, "data source ds-7): client_id is missing"),
        ({"client_secret": ""}, "data source ds-7): client_secret is missing"),
        ({"page_size": 0}, "page_size: must be a whole number from 1 to 500"),
        ({"page_size": 501}, "page_size: must be a whole number from 1 to 500"),
        ({"parallel_data_sources": 0}, "parallel_data_sources: must be a whole number from 1"),
        ({"parallel_data_sources": 65}, "parallel_data_sources: must be a whole number from 1"),
        ({"requests_per_minute": "fast"}, "requests_per_minute: must be a whole number"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds: must be a whole number from 1"),
        ({"request_timeout_seconds": 3601}, "request_timeout_seconds: must be a whole number"),
        ({"max_retry_seconds": 0}, "max_retry_seconds: must be a whole number from 1 to 3600"),
        ({"max_retry_seconds": 1.5}, "max_retry_seconds: must be a whole number from 1 to 3600"),
        ({"start_date": "last tuesday"}, "start_date: must be an ISO-8601 date-time"),
        ({"oauth_token_url": "http://auth.example.com/token"}, "oauth_token_url: must use https"),
        ({"data_sources": []}, "data_sources: required"),
    ],
)
def test_each_problem_is_one_line_naming_the_setting(changes: dict[str, Any], expected: str):
    problems = validate(_config(**changes))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "\n" not in problems[0]
    assert not any(secret in problems[0] for secret in SECRETS)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_is_allowed_on_a_loopback_host(host: str):
    url = f"http://{host}:8080/rest/v1/datasource?dataSourceId=ds-7"
    assert validate(_config(entry={"url": url})) == []


def test_an_entry_may_bring_its_own_client_credentials():
    config = _config(entry={"client_id": "own", "client_secret": "own-secret"})
    del config["client_id"], config["client_secret"]
    assert validate(config) == []


def test_the_same_data_source_twice_is_refused():
    config = _config()
    config["data_sources"].append(dict(config["data_sources"][0]))
    (problem,) = validate(config)
    assert problem.startswith("data_sources[1] (data source ds-7)")
    assert "data_sources[0]" in problem


def test_every_problem_is_listed_not_only_the_first():
    problems = validate(_config(page_size=0, start_date="soon", requests_per_minute=0))
    assert len(problems) == 3


def test_numbers_given_as_text_by_environment_variables_are_accepted():
    assert validate(_config(page_size="50", parallel_data_sources="4")) == []


def test_an_entry_problem_names_the_entry_by_its_index():
    config = _config()
    second = {"url": URL.replace("ds-7", "ds-8"), "refresh_tokn": "rt-other"}
    config["data_sources"].append(second)
    (problem,) = validate(config)
    assert problem.startswith("data_sources[1] (data source ds-8): refresh_tokn: unknown setting")


@pytest.mark.parametrize("refresh_token", [None, ""])
def test_a_missing_refresh_token_is_left_to_the_first_refresh(refresh_token: str | None):
    # tap-smartforms-auth may have stored it; validation only checks the config's shape,
    # and RefreshTokenSource.pick fails that data source alone when no store has it.
    (source,) = parse(_config(entry={"refresh_token": refresh_token})).data_sources
    assert source.refresh_token is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"url": f"{BASE}?dataSourceId="}, "data_sources[0].url: has no dataSourceId"),
        ({"url": f"{BASE}?dataSourceId=%20"}, "data_sources[0].url: has no dataSourceId"),
        ({"url": ""}, "data_sources[0].url: required"),
        ({"url": None}, "data_sources[0].url: required"),
        ({"url": "https:///no-host?dataSourceId=1"}, "data_sources[0].url: must be an https"),
    ],
)
def test_an_unusable_url_is_named_with_its_entry(entry: dict[str, Any], expected: str):
    (problem,) = validate(_config(entry=entry))
    assert problem.startswith(expected)


@pytest.mark.parametrize("entry", ["https://x/?dataSourceId=1", None, ["url"]])
def test_an_entry_that_is_not_an_object_is_named(entry: object):
    config = _config()
    config["data_sources"] = [entry]
    (problem,) = validate(config)
    assert problem.startswith("data_sources[0]: must be an object")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]", "[0:0:0:0:0:0:0:1]"]
)
def test_plain_http_is_allowed_on_any_loopback_spelling(host: str):
    url = f"http://{host}/rest/v1/datasource?dataSourceId=ds-7"
    assert validate(_config(entry={"url": url})) == []


@pytest.mark.parametrize(
    "host",
    [
        "localhost.example.com",  # only looks local
        "127.0.0.1@example.com",  # user info before the real host
        "127.0.0.1.example.com",
        "10.0.0.1",
        "[::2]",
        "0.0.0.0",
    ],
)
def test_plain_http_is_refused_on_any_other_host(host: str):
    url = f"http://{host}/rest/v1/datasource?dataSourceId=ds-7"
    (problem,) = validate(_config(entry={"url": url}))
    assert problem.startswith("data_sources[0].url: must use https://")


def test_plain_http_token_url_is_allowed_on_a_loopback_host():
    assert validate(_config(oauth_token_url="http://127.0.0.1:9000/oauth/token")) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"page_size": "secret-page-size-value"},
        {"start_date": "secret-start-date-value"},
        {"parallel_data_sources": "secret-parallel-value"},
        {"oauth_token_url": "ftp://secret-token-host-value/"},
        {"entry": {"url": "http://user:secret-password-value@example.com/?dataSourceId=ds-7"}},
        {"entry": {"url": "https://example.com/?secret-query-value=1"}},
    ],
)
def test_a_problem_never_quotes_the_value_given(changes: dict[str, Any]):
    (problem,) = validate(_config(**changes))
    assert "secret-" not in problem
    assert "\n" not in problem


def test_a_missing_secret_is_reported_without_the_secrets_that_are_present():
    config = _config(entry={"client_id": "entry-client"})
    config["client_secret"] = None
    (problem,) = validate(config)
    assert "client_secret is missing" in problem
    assert all(secret not in problem for secret in SECRETS)


@pytest.mark.parametrize("value", ["1", "500", 1, 500])
def test_page_size_takes_its_whole_range(value: object):
    assert validate(_config(page_size=value)) == []


@pytest.mark.parametrize("value", [1.5, True, "ten", "-1", " "])
def test_page_size_that_is_not_a_whole_number_is_refused(value: object):
    (problem,) = validate(_config(page_size=value))
    assert problem.startswith("page_size: must be a whole number from 1 to 500")


@pytest.mark.parametrize(
    "start_date", ["2026-01-01", "2026-01-01T00:00:00Z", "2026-01-15T14:23:45.000+0000"]
)
def test_start_date_takes_any_timestamp_style_of_the_contract(start_date: str):
    assert validate(_config(start_date=start_date)) == []


def test_parse_resolves_each_entry_with_the_top_level_credentials_and_defaults():
    settings = parse(_config(start_date="2026-01-15T16:00:00+02:00"))
    (source,) = settings.data_sources
    assert source.data_source_id == "ds-7"
    assert (source.client_id, source.client_secret) == ("client", SECRETS[1])
    assert settings.start_date is not None
    assert settings.start_date.isoformat() == "2026-01-15T14:00:00+00:00"
    assert settings.page_size == 500
    assert settings.parallel_data_sources == 8
    assert settings.request_timeout_seconds == 120
    assert settings.max_retry_seconds == 300


def test_request_timeout_and_retry_patience_are_read_as_given():
    settings = parse(_config(request_timeout_seconds="2", max_retry_seconds=5))
    assert (settings.request_timeout_seconds, settings.max_retry_seconds) == (2, 5)


def test_an_entrys_own_credentials_win_over_the_top_level_ones():
    settings = parse(_config(entry={"client_id": "own", "client_secret": "own-secret-value"}))
    (source,) = settings.data_sources
    assert (source.client_id, source.client_secret) == ("own", "own-secret-value")


def test_parse_raises_one_settings_error_listing_every_problem():
    with pytest.raises(SettingsError) as raised:
        parse(_config(page_size=0, parallel_data_sources=65))
    assert len(raised.value.problems) == 2


# ------------------------------------------------------------------ keys no setting has

ENTRY = "data_sources[0] (data source ds-7): "


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"page_sise": 50}, "page_sise: unknown setting; did you mean page_size?"),
        (
            {"client_secert": SECRETS[1]},
            "client_secert: unknown setting; did you mean client_secret?",
        ),
        (
            {"entry": {"refresh_tokn": SECRETS[0]}},
            ENTRY + "refresh_tokn: unknown setting; did you mean refresh_token?",
        ),
        (
            {"entry": {"client_secert": SECRETS[1]}},
            ENTRY + "client_secert: unknown setting; did you mean client_secret?",
        ),
        (
            {"flatening_enabled": True},
            "flatening_enabled: unknown setting; did you mean flattening_enabled?",
        ),
        ({"colour": "blue"}, "colour: unknown setting; see the README's Configuration table"),
    ],
)
def test_an_unknown_key_is_one_line_naming_it_and_the_nearest_setting(
    changes: dict[str, Any], expected: str
):
    problems = validate(_config(**changes))

    assert problems == [expected]
    assert not any(secret in problems[0] for secret in SECRETS)


def test_an_unknown_key_in_an_entry_without_a_usable_url_is_named_by_index():
    problems = validate(_config(entry={"url": None, "ulr": URL}))

    assert "data_sources[0]: ulr: unknown setting; did you mean url?" in problems


def test_a_key_too_long_to_be_a_typo_is_counted_not_shown():
    problems = validate(_config(**{SECRETS[0] * 3: "x"}))

    assert problems == ["a key of 60 characters is not a setting"]


@pytest.mark.parametrize(
    "changes",
    [
        {"stream_maps": {"responses": {"email_hash": "md5(respondent_email)", "extra": None}}},
        {"stream_maps": {"answers": "__NULL__"}},
        {"stream_map_config": {"salt": "x"}},
        {"flattening_enabled": True, "flattening_max_depth": 2},
        {"flattening_max_key_length": 60, "flattening_separator": "__"},
        {
            "batch_config": {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": "file:///tmp", "prefix": "b-"},
            }
        },
        {"batch_config": {"encoding": {"format": "parquet"}, "storage": {"root": "file:///b"}}},
        {"faker_config": {"seed": 1, "locale": ["fr_FR"]}},
        {"emit_activate_version_messages": True},
        {"start_date": None, "token_store_path": "/tmp/tokens.json"},
    ],
)
def test_the_sdk_own_settings_are_known(changes: dict[str, Any]):
    assert validate(_config(**changes)) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"batch_config": "jsonl"}, "batch_config: must be an object"),
        ({"batch_config": {"encoding": "jsonl"}}, "batch_config.encoding: must be an object"),
        (
            {"batch_config": {"encoding": {"format": "csv"}}},
            "batch_config.encoding.format: must be one of jsonl, parquet",
        ),
        ({"stream_maps": ["responses"]}, "stream_maps: must be an object"),
        ({"stream_maps": {"responses": 5}}, "stream_maps.responses: is not valid"),
        ({"stream_map_config": "salt"}, "stream_map_config: must be an object"),
        ({"flattening_enabled": "yes"}, "flattening_enabled: must be true or false"),
        ({"flattening_max_depth": 1.5}, "flattening_max_depth: must be a whole number"),
        (
            {"emit_activate_version_messages": "yes"},
            "emit_activate_version_messages: must be true or false",
        ),
    ],
)
def test_an_sdk_setting_of_the_wrong_type_is_one_line_without_its_value(
    changes: dict[str, Any], expected: str
):
    problems = validate(_config(**changes))

    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)
    for value in changes.values():
        if isinstance(value, str):
            assert value not in problems[0]


def test_sdk_settings_schema_covers_every_setting_the_sdk_adds_for_the_tap():
    from tap_smartforms.settings import SDK_SETTINGS_SCHEMA  # noqa: PLC0415
    from tap_smartforms.tap import TapSmartForms  # noqa: PLC0415

    appended: dict[str, Any] = {"properties": {}}
    TapSmartForms.append_builtin_config(appended)

    assert set(appended["properties"]) <= set(SDK_SETTINGS_SCHEMA["properties"])
    assert set(SDK_SETTINGS_SCHEMA["properties"]) - set(appended["properties"]) == set()
