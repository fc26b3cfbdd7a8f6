"""DataSourceClient.fetch_page: what each HTTP status of the data endpoint leads to.

docs/api-contract.md §5. The HTTP side is an in-process fake (a ``requests`` transport
adapter serving scripted replies), the token endpoint included, so the real
authenticator's refresh-on-401 runs; sleeps go to a fake clock, so nothing waits.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from tap_smartforms.api_shape import parse_data_source_url
from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.client import DataSourceClient, PageTooLarge
from tap_smartforms.errors import DataSourceError
from tap_smartforms.ratelimit import SlidingWindowLimiter
from tap_smartforms.retry import MAX_RETRY_AFTER_SECONDS, MAX_TRIES
from tap_smartforms.transport import DEFAULT_LIMITS, ReplyLimits

DATA_URL = "https://site.atlassian.net/gateway/api/svc/jira/apps/a_b/rest/v1/datasource"
TOKEN_URL = "https://auth.example.com/oauth/token"
CLIENT_SECRET = "client-secret-never-shown"
REFRESH_TOKEN = "refresh-token-never-shown"
PAGE = {"form": {"id": "f1"}, "responses": [{"id": "r1"}], "total": 1, "offset": 0, "limit": 10}

Reply = tuple[int, Any, dict[str, str]]  # status, body (JSON-able, bytes or an exception)


class FakeHttp(BaseAdapter):
    """Serves scripted data-endpoint replies in order; the token endpoint always
    issues a fresh access token. Records every request it sees."""

    def __init__(self, *replies: Reply) -> None:
        super().__init__()
        self.replies = list(replies)
        self.data_requests: list[requests.PreparedRequest] = []
        self.token_requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.url == TOKEN_URL:
            self.token_requests += 1
            n = self.token_requests
            return _response(
                request, 200, {"access_token": f"access-token-{n}", "expires_in": 3600}
            )
        self.data_requests.append(request)
        status, body, headers = self.replies.pop(0) if self.replies else (200, PAGE, {})
        if isinstance(body, Exception):
            raise body
        return _response(request, status, body, headers)

    def close(self) -> None:
        pass

    def bearer_tokens(self) -> list[str]:
        return [str(r.headers["Authorization"]).removeprefix("Bearer ") for r in self.data_requests]


def _response(
    request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.request = request
    response.url = str(request.url)
    response.headers.update(headers or {})
    # A body to stream, as from a real connection (the client reads with stream=True).
    response.raw = io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode())
    return response


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(
    http: FakeHttp,
    time: FakeTime | None = None,
    retry_sleep: Any = None,
    limits: ReplyLimits = DEFAULT_LIMITS,
) -> DataSourceClient:
    time = time or FakeTime()
    session = requests.Session()
    session.mount("https://", http)
    logger = logging.getLogger("test_client")
    authenticator = RefreshTokenAuthenticator(
        "ds-7",
        OAuthClient(TOKEN_URL, "client", CLIENT_SECRET),
        REFRESH_TOKEN,
        session=session,
        clock=time.clock,
        logger=logger,
    )
    return DataSourceClient(
        parse_data_source_url(f"{DATA_URL}?dataSourceId=ds-7"),
        authenticator,
        SlidingWindowLimiter(100, clock=time.clock, sleep=time.sleep),
        user_agent="tap-smartforms/test",
        logger=logger,
        session=session,
        sleep=retry_sleep or time.sleep,
        limits=limits,
    )


def _fetch(client: DataSourceClient, offset: int = 0) -> Any:
    return client.fetch_page(offset=offset, limit=10, updated_from=None)


def _failure(http: FakeHttp, offset: int = 0) -> str:
    with pytest.raises(DataSourceError) as raised:
        _fetch(_client(http), offset)
    assert raised.value.data_source_id == "ds-7"
    message = str(raised.value)
    assert message.startswith("data source ds-7: ")
    assert "\n" not in message
    assert CLIENT_SECRET not in message
    assert REFRESH_TOKEN not in message
    return message


def test_a_200_page_is_shaped_into_records():
    page = _fetch(_client(FakeHttp((200, PAGE, {}))))
    assert [bundle.record["id"] for bundle in page.responses] == ["r1"]
    assert page.form["id"] == "f1"


def test_the_request_carries_bearer_token_paging_and_data_source_id():
    http = FakeHttp()
    _fetch(_client(http), offset=30)
    (request,) = http.data_requests
    assert request.headers["Authorization"] == "Bearer access-token-1"
    query = dict(parse_qsl(urlsplit(str(request.url)).query))
    assert query == {"dataSourceId": "ds-7", "limit": "10", "offset": "30"}


def test_a_401_refreshes_the_access_token_once_and_retries_with_the_new_one():
    http = FakeHttp((401, {"message": "token expired"}, {}), (200, PAGE, {}))
    client = _client(http)
    assert len(_fetch(client).responses) == 1
    assert http.bearer_tokens() == ["access-token-1", "access-token-2"]
    assert http.token_requests == 2
    assert client.counters.requests == 2


def test_a_401_that_persists_after_the_refresh_fails_the_data_source():
    http = FakeHttp((401, {"message": "bad token"}, {}), (401, {"message": "bad token"}, {}))
    message = _failure(http)
    assert "refused a freshly refreshed access token (HTTP 401)" in message
    assert "re-authorize" in message
    assert len(http.data_requests) == 2
    assert http.token_requests == 2


def test_the_gateways_scope_mismatch_names_the_admin_fix_without_refreshing():
    body = {"code": 401, "message": "Unauthorized; scope does not match"}
    http = FakeHttp((401, body, {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}))
    message = _failure(http)
    assert "scope does not match" in message
    assert "Connected apps" in message
    assert http.token_requests == 1
    assert len(http.data_requests) == 1


def test_a_413_raises_page_too_large_for_the_pager_to_shrink():
    http = FakeHttp((413, {"error": "payload_too_large"}, {}))
    with pytest.raises(PageTooLarge, match="offset 40 alone exceeds the API's 5 MB"):
        _fetch(_client(http), offset=40)
    assert len(http.data_requests) == 1


def test_a_429_waits_as_retry_after_says_then_retries():
    time = FakeTime()
    http = FakeHttp((429, {"error": "rate_limited"}, {"Retry-After": "7"}), (200, PAGE, {}))
    client = _client(http, time)
    assert len(_fetch(client).responses) == 1
    assert sum(time.sleeps) == pytest.approx(7.0)
    assert client.counters.retries == 1


def test_a_429_holds_back_the_next_pages_too():
    time = FakeTime()
    http = FakeHttp((429, {}, {"Retry-After": "7"}))
    client = _client(http, time)
    _fetch(client)
    started = time.now
    client.limiter.push_back(5.0)  # a second 429 right after the retry
    _fetch(client)
    assert time.now - started == pytest.approx(5.0)


def _client_whose_retries_do_not_move_the_clock(http: FakeHttp, time: FakeTime) -> Any:
    """A client whose retry waits pass instantly and leave the clock alone: any
    time that passes afterwards is the request budget holding back."""
    return _client(http, time, retry_sleep=lambda seconds: None)


@pytest.mark.parametrize(
    ("retry_after", "held_back"),
    [("7", 7.0), ("1000000000", MAX_RETRY_AFTER_SECONDS), ("inf", MAX_RETRY_AFTER_SECONDS)],
)
def test_a_429_holds_the_request_budget_back_for_its_retry_after(
    retry_after: str, held_back: float
):
    time = FakeTime()
    http = FakeHttp((429, {"error": "rate_limited"}, {"Retry-After": retry_after}))
    client = _client_whose_retries_do_not_move_the_clock(http, time)
    started = time.now
    assert len(_fetch(client).responses) == 1
    # The retry itself had to wait in the limiter: the 429 reached the budget.
    assert time.sleeps == [pytest.approx(held_back)]
    assert time.now - started == pytest.approx(held_back)
    assert len(http.data_requests) == 2


def test_a_429_that_persists_names_the_retry_after_it_was_sent():
    replies = [(429, {}, {"Retry-After": "1e12\r\nX-Forged: 1"}) for _ in range(MAX_TRIES)]
    message = _failure(FakeHttp(*replies))
    assert "rate limited (HTTP 429, Retry-After 1e12\\r\\nX-Forged: 1)" in message


def test_a_429_without_a_usable_retry_after_leaves_the_budget_alone():
    time = FakeTime()
    http = FakeHttp((429, {}, {"Retry-After": "nan"}))
    client = _client_whose_retries_do_not_move_the_clock(http, time)
    assert len(_fetch(client).responses) == 1
    assert time.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_retried(status: int):
    http = FakeHttp((status, {"error": "oops"}, {}), (200, PAGE, {}))
    assert len(_fetch(_client(http)).responses) == 1
    assert len(http.data_requests) == 2


@pytest.mark.parametrize(
    "broken",
    [b'{"form": {"id": "f1"}, "responses": [{"id": "r1"}, {"id', b"", b"<html>Bad gateway</html>"],
)
def test_a_truncated_or_non_json_body_is_retried(broken: bytes):
    http = FakeHttp((200, broken, {}), (200, PAGE, {}))
    assert len(_fetch(_client(http)).responses) == 1
    assert len(http.data_requests) == 2


@pytest.mark.parametrize(
    "error",
    [
        requests.ConnectionError("reset"),
        requests.ReadTimeout("slow"),
        requests.exceptions.ChunkedEncodingError("body cut short"),
        requests.exceptions.ContentDecodingError("not gzip"),
    ],
)
def test_a_dropped_connection_or_timeout_is_retried(error: Exception):
    http = FakeHttp((0, error, {}), (200, PAGE, {}))
    assert len(_fetch(_client(http)).responses) == 1


def test_a_server_error_that_persists_gives_up_after_the_bounded_tries():
    http = FakeHttp(*[(503, {}, {"atl-traceid": "trace-42"}) for _ in range(MAX_TRIES)])
    message = _failure(http, offset=20)
    assert "the API kept failing at offset 20: HTTP 503 (atl-traceid trace-42)" in message
    assert f"gave up after {MAX_TRIES} tries" in message
    assert len(http.data_requests) == MAX_TRIES


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (400, "the API refused the request (HTTP 400)"),
        (403, "access denied (HTTP 403): the token's user may no longer view this form"),
        (404, "not found (HTTP 404): the data source was deleted or the URL is wrong"),
    ],
)
def test_a_client_error_fails_the_data_source_quoting_the_server(status: int, says: str):
    body = {"error": "invalid_data_source", "message": "Data source ds-7 is not available"}
    http = FakeHttp((status, body, {"atl-traceid": "trace-9"}))
    message = _failure(http)
    assert says in message
    assert "the server says: invalid_data_source: Data source ds-7 is not available" in message
    assert message.endswith("(atl-traceid trace-9)")
    assert len(http.data_requests) == 1


def test_a_client_error_without_a_body_still_names_the_status():
    message = _failure(FakeHttp((404, b"", {})))
    assert "not found (HTTP 404)" in message
    assert "server says" not in message


def test_a_secret_echoed_in_an_error_body_is_redacted():
    body = {
        "error": "invalid",
        "message": f"refresh_token {REFRESH_TOKEN} and access-token-1 rejected",
    }
    message = _failure(FakeHttp((400, body, {})))
    assert "access-token-1" not in message
    assert "***" in message


def test_a_200_that_is_not_a_page_fails_the_data_source_naming_the_offset():
    message = _failure(FakeHttp((200, ["not", "a", "page"], {})), offset=50)
    assert "the reply for offset 50 could not be read" in message


def test_server_text_in_a_failure_is_escaped_and_cut():
    body = {"error": "bad", "message": "line\r\n2026-01-01 | ERROR forged\x1b[2J" + "." * 1000}
    message = _failure(FakeHttp((400, body, {"atl-traceid": "t\n1"})))
    assert "\r" not in message
    assert "\x1b" not in message
    assert "the server says: bad: line\\r\\n2026-01-01 | ERROR forged\\x1b[2J" in message
    assert "…" in message
    assert len(message) < 500
    assert message.endswith("(atl-traceid t\\n1)")


HTML = b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"


@pytest.mark.parametrize(
    "content_type", ["text/html; charset=utf-8", "text/plain", "application/octet-stream"]
)
def test_a_200_that_is_not_json_is_retried(content_type: str):
    http = FakeHttp((200, HTML, {"Content-Type": content_type}), (200, PAGE, {}))
    assert len(_fetch(_client(http)).responses) == 1
    assert len(http.data_requests) == 2


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/json",
        "application/problem+json",
        "APPLICATION/JSON",
    ],
)
def test_every_json_content_type_is_read(content_type: str):
    http = FakeHttp((200, PAGE, {"Content-Type": content_type}))
    assert len(_fetch(_client(http)).responses) == 1


def test_an_html_page_that_persists_fails_naming_it_and_its_content_type():
    reply = (200, HTML, {"Content-Type": "text/html; charset=utf-8", "atl-traceid": "t-5"})
    message = _failure(FakeHttp(*[reply] * MAX_TRIES), offset=10)
    assert (
        "the API kept failing at offset 10: the API answered with an HTML page "
        "(Content-Type text/html; charset=utf-8) (atl-traceid t-5)"
    ) in message


def test_a_non_json_content_type_is_named_escaped():
    reply = (200, b"x", {"Content-Type": "text/plain\x1b[2J"})
    message = _failure(FakeHttp(*[reply] * MAX_TRIES))
    assert "the API answered with non-JSON content (Content-Type text/plain\\x1b[2J)" in message


def test_a_reply_past_the_size_cap_is_treated_like_a_413(caplog: pytest.LogCaptureFixture):
    big_page = {**PAGE, "padding": "x" * 5000}
    http = FakeHttp((200, big_page, {}))
    client = _client(http, limits=ReplyLimits(max_bytes=4096))
    with (
        caplog.at_level(logging.WARNING, logger="test_client"),
        pytest.raises(PageTooLarge, match="offset 40 alone exceeded 4096 bytes once decoded"),
    ):
        _fetch(client, offset=40)
    assert len(http.data_requests) == 1, "a reply too large is not retried as it is"
    assert "the reply for offset 40 (limit 10) exceeded 4096 bytes" in caplog.text
