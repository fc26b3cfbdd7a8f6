"""Secrets stay where they belong: the token POST never follows a redirect, every
written form of a secret is redacted wherever our messages go, and a token that an
HTTP header cannot carry is refused without being shown (issue 11, items 3 and 7)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from requests.adapters import BaseAdapter

from tap_smartforms import auth_helper
from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.auth_helper import CodeExchange, HelperError, exchange_code
from tap_smartforms.errors import (
    REDACTOR,
    DataSourceError,
    SecretRedactor,
    install_redactor,
    token_text_problem,
)
from tap_smartforms.retry import TransientError
from tap_smartforms.settings import validate
from tap_smartforms.token_store import EntryKey, RefreshTokenSource, TokenStore

TOKEN_URL = "https://auth.example.com/oauth/token"
ELSEWHERE = "https://collector.example.net/steal"
CLIENT = OAuthClient(TOKEN_URL, "client-id", "client-secret-r3d1r")
REFRESH_TOKEN = "rt-configured-r3d1r"


class RedirectingTokenEndpoint(BaseAdapter):
    """A token endpoint answering 307 to ``ELSEWHERE``, which would grant anything:
    a client that follows the redirect has sent its secrets there."""

    def __init__(self, status: int = 307, access_token: str = "at-granted-0001") -> None:
        super().__init__()
        self.status = status
        self.access_token = access_token
        self.urls: list[str] = []

    def close(self) -> None:
        pass

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        self.urls.append(request.url)
        response = requests.Response()
        response.request = request
        response.url = request.url
        response.headers["Content-Type"] = "application/json"
        if request.url.startswith(TOKEN_URL) and self.status != 200:
            response.status_code = self.status
            response.headers["Location"] = ELSEWHERE
            response.raw = io.BytesIO(b"{}")
        else:
            response.status_code = 200
            body = {"access_token": self.access_token, "refresh_token": "rt-stolen-00001"}
            response.raw = io.BytesIO(json.dumps(body).encode())
        return response

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", self)
        return session


# ------------------------------------------------------------------ item 3: redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_tap_does_not_follow_a_token_endpoint_redirect(status: int):
    endpoint = RedirectingTokenEndpoint(status)
    authenticator = RefreshTokenAuthenticator(
        "ds-1", CLIENT, REFRESH_TOKEN, session=endpoint.session()
    )

    with pytest.raises(DataSourceError) as raised:
        authenticator.access_token()

    assert endpoint.urls == [TOKEN_URL]
    message = str(raised.value)
    assert message.startswith(f"data source ds-1: the token endpoint {TOKEN_URL} answered HTTP")
    assert str(status) in message
    assert "oauth_token_url" in message
    assert "\n" not in message
    assert ELSEWHERE not in message


@pytest.mark.parametrize("status", [302, 307, 308])
def test_the_helper_does_not_follow_a_token_endpoint_redirect(status: int):
    endpoint = RedirectingTokenEndpoint(status)
    exchange = CodeExchange(None, "client-id", "client-secret-r3d1r", "code-1234", None)

    with pytest.raises(HelperError, match=r"answered HTTP 3\d\d, a redirect") as raised:
        exchange_code(exchange, TOKEN_URL, session=endpoint.session())

    assert endpoint.urls == [TOKEN_URL]
    assert "--token-url" in str(raised.value)
    assert "client-secret-r3d1r" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["http://auth.example.com/oauth/token", "http://10.0.0.5/oauth/token"]
)
def test_the_helper_refuses_plain_http_off_loopback_before_sending_anything(url: str):
    endpoint = RedirectingTokenEndpoint(200)
    exchange = CodeExchange(None, "client-id", "client-secret-r3d1r", "code-1234", None)

    with pytest.raises(HelperError, match="must use https://") as raised:
        exchange_code(exchange, url, session=endpoint.session())

    assert endpoint.urls == []
    assert "--token-url" in str(raised.value)


def test_the_helper_accepts_plain_http_on_loopback():
    endpoint = RedirectingTokenEndpoint(200)
    session = endpoint.session()
    session.mount("http://", endpoint)
    exchange = CodeExchange(None, "client-id", "client-secret-r3d1r", "code-1234", None)

    assert exchange_code(exchange, "http://127.0.0.1:9/oauth/token", session=session) == (
        "rt-stolen-00001"
    )


# ------------------------------------------------------------------ item 8: helper input


def test_the_helper_says_one_line_when_the_input_ends(monkeypatch, capsys, tmp_path):
    def no_more_input(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", no_more_input)
    status = auth_helper.run(
        ["--data-source-id", "ds-1", "--code", "code-1", "--token-store-path", str(tmp_path / "t")]
    )

    err = capsys.readouterr().err
    assert status == 1
    assert err == "tap-smartforms-auth: the input ended before the answer; nothing stored\n"


def test_the_helper_says_one_line_on_ctrl_c(monkeypatch, capsys, tmp_path):
    def interrupted(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(auth_helper.getpass, "getpass", interrupted)
    status = auth_helper.run(
        [
            *("--data-source-id", "ds-1", "--client-id", "c", "--code", "code-1"),
            *("--token-store-path", str(tmp_path / "t")),
        ]
    )

    err = capsys.readouterr().err
    assert status == 130
    assert err.strip().splitlines() == [
        "tap-smartforms-auth: interrupted; run it again (with a new code if it was sent)"
    ]
    assert "Traceback" not in err


def test_the_helper_says_nothing_was_pasted_on_empty_input(capsys, tmp_path):
    status = auth_helper.run(
        ["--data-source-id", "ds-1", "--token-store-path", str(tmp_path / "t")],
        stdin=io.StringIO(""),
    )

    err = capsys.readouterr().err
    assert status == 1
    assert "nothing was pasted" in err
    assert len(err.splitlines()) == 1


# ------------------------------------------------------------------ item 7: redaction

SECRET = 'sEcr3t/with+odd "chars"\\&='


def escaped_forms(secret: str) -> dict[str, str]:
    return {
        "json": json.dumps(secret)[1:-1],
        "url": quote(secret, safe=""),
        "url-plus": quote_plus(secret),
        "repr": repr(secret)[1:-1],
        "in a dict repr": repr({"client_secret": secret}),
        "in a json body": json.dumps({"client_secret": secret}),
    }


@pytest.mark.parametrize("form", list(escaped_forms(SECRET)))
def test_every_written_form_of_a_secret_is_redacted(form: str):
    redactor = SecretRedactor()
    redactor.register(SECRET)
    text = escaped_forms(SECRET)[form]

    redacted = redactor.redact(f"before {text} after")

    assert "***" in redacted
    for written in escaped_forms(SECRET).values():
        assert written not in redacted
    assert "sEcr3t" not in redacted


def test_a_data_source_error_is_redacted_when_it_is_built():
    REDACTOR.register("secret-in-a-trace-9a8b")

    error = DataSourceError("ds-1", "HTTP 500 (atl-traceid secret-in-a-trace-9a8b)")

    assert "secret-in-a-trace-9a8b" not in str(error)
    assert "secret-in-a-trace-9a8b" not in error.problem
    assert "***" in str(error)


def test_a_transient_error_is_redacted_when_it_is_built():
    REDACTOR.register("secret-in-a-library-5c6d")

    error = TransientError("no complete reply (url ?token=secret-in-a-library-5c6d)")

    assert "secret-in-a-library-5c6d" not in str(error)
    assert "secret-in-a-library-5c6d" not in error.problem


@pytest.fixture
def own_logger_output() -> Iterator[tuple[io.StringIO, list[logging.Logger]]]:
    """A handler on a logger of ours that does not propagate to the root (as the SDK
    configures its loggers), so only a filter on our own loggers can redact."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    loggers = [logging.getLogger("tap-smartforms"), logging.getLogger("tap_smartforms.auth")]
    saved = [(logger.propagate, list(logger.handlers), list(logger.filters)) for logger in loggers]
    for logger in loggers:
        logger.propagate = False
        logger.handlers = [handler]
        logger.filters = []
    yield output, loggers
    for logger, (propagate, handlers, filters) in zip(loggers, saved, strict=True):
        logger.propagate, logger.handlers, logger.filters = propagate, handlers, filters


def test_install_redactor_covers_the_tap_logger_and_module_loggers(own_logger_output):
    output, loggers = own_logger_output
    secret = "secret-for-own-loggers-1f2e"
    REDACTOR.register(secret)

    install_redactor()
    for logger in loggers:
        logger.warning("a message with %s and %r", secret, {"t": secret})
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            logger.exception("with a traceback")

    written = output.getvalue()
    assert written.count("***") >= 6
    assert secret not in written
    assert all(REDACTOR in logger.filters for logger in loggers)


# ------------------------------------------------------------------ item 7: header-safe tokens


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("rt-with\nnewline-1234", "control character or line break"),
        ("rt-with\x00nul-12345", "control character"),
        ("rt-with\x7fdel-12345", "control character"),
        ("rt-ending-in-newline\n", "begins or ends"),
        (" rt-leading-space", "begins or ends"),
        ("rt-with-€-euro-12345", "not Latin-1"),
    ],
)
def test_a_token_no_header_can_carry_is_refused_by_config_validation(value: str, problem: str):
    config = {
        "client_id": "client-id",
        "client_secret": "client-secret-ok-1234",
        "data_sources": [
            {
                "url": "https://x.atlassian.net/gateway/api/svc/jira/apps/a/rest/v1/datasource"
                "?dataSourceId=ds-7",
                "refresh_token": value,
            }
        ],
    }
    assert token_text_problem(value) is not None

    problems = validate(config)

    assert len(problems) == 1
    assert problems[0].startswith("data_sources[0] (data source ds-7): refresh_token ")
    assert problem in problems[0]
    assert value.strip() not in problems[0]


def test_a_bad_top_level_client_secret_names_the_top_level_setting():
    config = {
        "client_id": "client-id",
        "client_secret": "secret-with\r\ninjected-header",
        "data_sources": [
            {
                "url": "https://x.atlassian.net/gateway/api/svc/jira/apps/a/rest/v1/datasource"
                "?dataSourceId=ds-7",
                "refresh_token": "rt-fine-123456",
            }
        ],
    }

    (problem,) = validate(config)

    assert "top-level client_secret holds a control character" in problem
    assert "injected-header" not in problem


def test_an_access_token_no_header_can_carry_fails_the_data_source_without_showing_it(tmp_path):
    endpoint = RedirectingTokenEndpoint(200, access_token="at-bad\nX-Injected: 1")
    store = TokenStore(tmp_path / "tokens.json")
    key = EntryKey(TOKEN_URL, CLIENT.client_id, "ds-1")
    authenticator = RefreshTokenAuthenticator(
        "ds-1",
        CLIENT,
        REFRESH_TOKEN,
        token_source=RefreshTokenSource(store, key, REFRESH_TOKEN),
        session=endpoint.session(),
    )

    with pytest.raises(DataSourceError, match="sent an access_token that holds a control") as e:
        authenticator.access_token()

    assert "X-Injected" not in str(e.value)
    # The refresh token it rotated is kept all the same: the chain must survive.
    stored = store.read(key)
    assert stored is not None
    assert stored.refresh_token == "rt-stolen-00001"
