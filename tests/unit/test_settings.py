"""Settings validation: one line per problem, naming the entry and setting, never a value."""

from __future__ import annotations

from typing import Any

import pytest

from tap_smartforms.settings import validate

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
        ({"entry": {"refresh_token": None}}, "data source ds-7): refresh_token is missing"),
        ({"client_id": None}, "data source ds-7): client_id is missing"),
        ({"client_secret": ""}, "data source ds-7): client_secret is missing"),
        ({"page_size": 0}, "page_size: must be a whole number from 1 to 500"),
        ({"page_size": 501}, "page_size: must be a whole number from 1 to 500"),
        ({"parallel_data_sources": 0}, "parallel_data_sources: must be a whole number from 1"),
        ({"parallel_data_sources": 65}, "parallel_data_sources: must be a whole number from 1"),
        ({"requests_per_minute": "fast"}, "requests_per_minute: must be a whole number"),
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
    problems = validate(_config(page_size=0, start_date="soon", entry={"refresh_token": ""}))
    assert len(problems) == 3


def test_numbers_given_as_text_by_environment_variables_are_accepted():
    assert validate(_config(page_size="50", parallel_data_sources="4")) == []
